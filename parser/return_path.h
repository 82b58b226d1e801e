// The return path: messages the destination sends back to the source
// (be16 type, be16 len, payload), as one direction of a recorded postcopy
// migration. A RECV_BITMAP message is followed, outside its len, by the
// received-pages bitmap of one RAMBlock.
#ifndef QMIG_PARSER_RETURN_PATH_H_
#define QMIG_PARSER_RETURN_PATH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"
#include "parser/wire/natural_order.h"

namespace qmig {

struct PageRequest {
  std::string block;  // resolved: REQ_PAGES reuses the last REQ_PAGES_ID block
  uint64_t start;
  uint32_t length;
  uint64_t offset;  // of the message in the return-path stream
};

struct ReturnPathSummary {
  NameCounts messages;          // by type name
  std::vector<uint32_t> pongs;  // in arrival order, first kMaxRecordedPongs
  uint64_t page_requests = 0;
  std::vector<PageRequest> requests;  // first kMaxRecordedPageRequests
  std::optional<uint32_t> shut_status;
  NameCounts recv_bitmaps;  // block -> bitmap bytes
  uint64_t bytes = 0;
};

struct ReturnPathOptions {
  ParseLimits limits;
  // RAMBlock lengths from the main stream, when known: page requests and
  // bitmaps are then checked against them.
  NameCounts block_lengths;
};

struct ReturnPathResult {
  ReturnPathSummary summary;
  FindingList findings;
  bool valid() const { return findings.error_count() == 0; }
};

ReturnPathResult ParseReturnPath(ByteSource& source, const ReturnPathOptions& options);

}  // namespace qmig

#endif  // QMIG_PARSER_RETURN_PATH_H_
