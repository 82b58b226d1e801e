// A structure-aware mutator of migration streams, for libFuzzer's
// LLVMFuzzerCustomMutator / LLVMFuzzerCustomCrossOver
// (fuzz/structured_stream_fuzzer.cc).
//
// A byte mutator rarely keeps a stream framed: one inserted byte shifts
// every record after it, and the parser stops at the first broken frame. So
// this one decodes the input into records (fuzz/stream_records.h), changes
// the structure, and re-encodes: records are inserted, deleted, duplicated,
// moved and wrapped into (nested) packages, LISTEN and RUN move about,
// lengths change consistently or by a small wrong delta, command numbers,
// RAM flags, section ids, versions and footers change, and payload bytes
// are mutated by the byte mutator with their length fields fixed. Some calls
// still mutate the raw bytes, to reach what the records cannot express.
//
// Lengths that were consistent stay consistent through a mutation
// (Record::auto_length): deleting a record inside a package shrinks the
// package's declared length too, unless the mutation targets that length.
//
// Deterministic: the same input, seed and byte mutator state give the same
// output. The output never exceeds max_size.
#ifndef QMIG_FUZZ_STREAM_MUTATOR_H_
#define QMIG_FUZZ_STREAM_MUTATOR_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "fuzz/stream_records.h"

namespace qmig::fuzz {

// libFuzzer's LLVMFuzzerMutate contract: mutates data[0, size) in place
// within max_size bytes and returns the new size. nullptr: a small built-in
// byte mutator (for builds without libFuzzer).
using RawMutator = size_t (*)(uint8_t* data, size_t size, size_t max_size);

enum class Mutation : uint8_t {
  kRawBytes,    // the whole input, by the byte mutator
  kRawPayload,  // one payload or subsection body, by the byte mutator
  kDelete,
  kDuplicate,
  kMove,           // to any position in any record list (into or out of packages)
  kSwap,           // two neighbours
  kInsertCommand,  // a new command: PING, ADVISE, LISTEN, RUN, RAM_DISCARD, ...
  kInsertRecord,   // a new section, EOF or VMDESCRIPTION
  kWrapPackage,    // a run of records into a new PACKAGED (nests)
  kUnwrapPackage,
  kMoveListenRun,
  kResize,  // a length field, consistently or off by a small delta
  kCommandNumber,
  kRamFlags,      // a RAM record's flag word or page offset
  kSectionField,  // type, id, idstr, instance, version
  kFooter,        // add, drop or change
  kHeader,        // version, or drop/add the header
  kCount,
};
absl::string_view MutationName(Mutation mutation);

// Applies `mutation` to `records` (in place); false when it does not apply
// (nothing to delete, no package to unwrap, ...).
bool ApplyMutation(std::vector<Record>& records, Mutation mutation, uint64_t seed, RawMutator raw);

// LLVMFuzzerCustomMutator: returns the new size (<= max_size). `applied`,
// when given, receives the mutation that produced the output.
size_t MutateStream(uint8_t* data, size_t size, size_t max_size, unsigned int seed, RawMutator raw,
                    Mutation* applied = nullptr);

// LLVMFuzzerCustomCrossOver: a run of records of the second input inserted
// somewhere in the first. Returns the size written to `out`, 0 if none fits.
size_t CrossOverStreams(const uint8_t* data1, size_t size1, const uint8_t* data2, size_t size2,
                        uint8_t* out, size_t max_out_size, unsigned int seed);

}  // namespace qmig::fuzz

#endif  // QMIG_FUZZ_STREAM_MUTATOR_H_
