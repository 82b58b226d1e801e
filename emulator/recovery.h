// Postcopy recovery as the destination reports it: the result of a resumed
// connection merged into the result of the one that broke.
#ifndef QMIG_EMULATOR_RECOVERY_H_
#define QMIG_EMULATOR_RECOVERY_H_

#include <cstdint>

#include "parser/stream_parser.h"

namespace qmig {

// The broken connection's end (stream.truncated, input.io_error) becomes a
// note; `next`'s findings follow under "recovery N"; counts and the
// postcopy state carry on. `recovery` numbers the resumed connection from 1.
void MergeRecovered(ParseResult& merged, ParseResult next, uint64_t recovery);

}  // namespace qmig

#endif  // QMIG_EMULATOR_RECOVERY_H_
