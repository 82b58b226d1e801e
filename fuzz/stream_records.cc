#include "fuzz/stream_records.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include "absl/numeric/bits.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/encode/stream_writer.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"
#include "parser/wire/limits.h"

namespace qmig::fuzz {
namespace {

constexpr uint8_t kType(SectionType type) { return static_cast<uint8_t>(type); }

bool LooksLikeHugePageSize(uint64_t value) {
  return value > kTargetPageSize && value <= kMaxHostPageSize && absl::has_single_bit(value);
}

class Decoder {
 public:
  explicit Decoder(absl::Span<const uint8_t> in) : in_(in) {}

  std::vector<Record> Top() {
    std::vector<Record> records;
    size_t pos = 0;
    if (in_.size() >= 8 && LoadBe32(in_.data()) == kFileMagic) {
      Record header;
      header.kind = RecordKind::kHeader;
      header.magic = kFileMagic;
      header.version = LoadBe32(in_.data() + 4);
      records.push_back(std::move(header));
      pos = 8;
    }
    Records(pos, in_.size(), 0, records);
    return records;
  }

 private:
  // Frames [pos, end) into `out`; what does not frame ends as one opaque
  // record.
  void Records(size_t pos, size_t end, int depth, std::vector<Record>& out) {
    while (pos < end) {
      Record record;
      size_t next = pos;
      if (!Frame(next, end, depth, record)) {
        record = Record();
        record.kind = RecordKind::kOpaque;
        record.payload.assign(in_.begin() + pos, in_.begin() + end);
        out.push_back(std::move(record));
        return;
      }
      out.push_back(std::move(record));
      pos = next;
    }
  }

  // Bytes [pos, pos + n) when they lie before `end`.
  bool Has(size_t pos, size_t n, size_t end) const { return pos <= end && n <= end - pos; }
  std::vector<uint8_t> Slice(size_t pos, size_t n) const {
    return std::vector<uint8_t>(in_.begin() + pos, in_.begin() + pos + n);
  }

  bool Frame(size_t& pos, size_t end, int depth, Record& r) {
    const uint8_t* p = in_.data();
    const size_t avail = end - pos;
    switch (static_cast<SectionType>(p[pos])) {
      case SectionType::kEof:
        r.kind = RecordKind::kEof;
        pos += 1;
        return true;
      case SectionType::kStart:
      case SectionType::kFull: {
        if (!Has(pos, 6, end)) return false;
        size_t name_length = p[pos + 5];
        if (!Has(pos, 6 + name_length + 8, end)) return false;
        r.kind = RecordKind::kSection;
        r.type = p[pos];
        r.section_id = LoadBe32(p + pos + 1);
        r.idstr.assign(reinterpret_cast<const char*>(p + pos + 6), name_length);
        r.instance = LoadBe32(p + pos + 6 + name_length);
        r.version = LoadBe32(p + pos + 10 + name_length);
        idstrs_[r.section_id] = r.idstr;
        pos += 6 + name_length + 8;
        SectionBody(pos, end, r);
        return true;
      }
      case SectionType::kPart:
      case SectionType::kEnd:
        if (avail < 5) return false;
        r.kind = RecordKind::kSection;
        r.type = p[pos];
        r.section_id = LoadBe32(p + pos + 1);
        pos += 5;
        SectionBody(pos, end, r);
        return true;
      case SectionType::kVmDescription:
      case SectionType::kConfiguration: {
        if (avail < 5) return false;
        const bool config = p[pos] == kType(SectionType::kConfiguration);
        r.kind = config ? RecordKind::kConfiguration : RecordKind::kVmDescription;
        r.declared = LoadBe32(p + pos + 1);
        size_t present = std::min<size_t>(r.declared, avail - 5);
        r.payload = Slice(pos + 5, present);
        pos += 5 + present;
        if (config && present == r.declared) Subsections(pos, end, r);
        return true;
      }
      case SectionType::kCommand: {
        if (avail < 5) return false;
        r.number = LoadBe16(p + pos + 1);
        r.length = LoadBe16(p + pos + 3);
        pos += 5;
        if (r.number == kPackagedNumber && r.length == 4 && Has(pos, 4, end)) {
          r.kind = RecordKind::kPackaged;
          r.declared = LoadBe32(p + pos);
          pos += 4;
          size_t blob = std::min<size_t>(r.declared, end - pos);
          if (depth + 1 < kMaxDecodeDepth) {
            Records(pos, pos + blob, depth + 1, r.children);
          } else if (blob > 0) {
            Record opaque;
            opaque.payload = Slice(pos, blob);
            r.children.push_back(std::move(opaque));
          }
          pos += blob;
          return true;
        }
        r.kind = RecordKind::kCommand;
        size_t present = std::min<size_t>(r.length, end - pos);
        r.payload = Slice(pos, present);
        pos += present;
        return true;
      }
      default:
        return false;
    }
  }

  // CONFIGURATION subsections whose body size follows from their name.
  void Subsections(size_t& pos, size_t end, Record& r) {
    const uint8_t* p = in_.data();
    while (Has(pos, 2, end) && p[pos] == kType(SectionType::kSubsection)) {
      size_t name_length = p[pos + 1];
      if (!Has(pos, 2 + name_length + 4, end)) return;
      std::string name(reinterpret_cast<const char*>(p + pos + 2), name_length);
      size_t body = pos + 2 + name_length + 4;
      size_t size = 0;
      if (name == kConfigTargetPageBits) {
        size = 4;
      } else if (name == kConfigUuid) {
        size = 16;
      } else if (name == kConfigCapabilities) {
        if (!Has(body, 4, end)) return;
        uint32_t count = LoadBe32(p + body);
        size = 4;
        for (uint32_t i = 0; i < count; ++i) {
          if (!Has(body + size, 1, end)) return;
          size += 1 + p[body + size];
        }
      } else {
        return;  // unknown body size: the walk goes on with an opaque record
      }
      if (!Has(body, size, end)) return;
      r.subsections.push_back({std::move(name), LoadBe32(p + body - 4), Slice(body, size)});
      pos = body + size;
    }
  }

  void SectionBody(size_t& pos, size_t end, Record& r) {
    const uint8_t* p = in_.data();
    size_t payload_end = end;
    bool found = false;
    auto name = idstrs_.find(r.section_id);
    if (name != idstrs_.end() && name->second == kRamSectionName) {
      if (std::optional<size_t> size = WalkRamRecords(in_.subspan(pos, end - pos))) {
        payload_end = pos + *size;
        found = true;
      }
    }
    if (!found) {
      if (std::optional<size_t> footer = FindFooter(pos, end, r.section_id)) {
        payload_end = *footer;
        found = true;
      }
    }
    if (!found) {
      for (size_t q = pos; q < end; ++q) {
        if (Plausible(q, end)) {
          payload_end = q;
          break;
        }
      }
    }
    r.payload = Slice(pos, payload_end - pos);
    pos = payload_end;
    if (Has(pos, 5, end) && p[pos] == kType(SectionType::kFooter)) {
      r.footer = LoadBe32(p + pos + 1);
      pos += 5;
    }
  }

  // The first `7e be32(id)` in [pos, end). A miss is remembered so that a
  // footerless stream of many sections is not scanned quadratically.
  std::optional<size_t> FindFooter(size_t pos, size_t end, uint32_t id) {
    auto key = std::make_pair(id, end);
    auto miss = no_footer_from_.find(key);
    if (miss != no_footer_from_.end() && miss->second <= pos) return std::nullopt;
    const uint8_t* p = in_.data();
    for (size_t q = pos; Has(q, 5, end);) {
      const void* hit = std::memchr(p + q, kType(SectionType::kFooter), end - q - 4);
      if (hit == nullptr) break;
      q = static_cast<const uint8_t*>(hit) - p;
      if (LoadBe32(p + q + 1) == id) return q;
      ++q;
    }
    no_footer_from_[key] = pos;
    return std::nullopt;
  }

  // Whether a record plausibly starts at q (used only without a footer).
  bool Plausible(size_t q, size_t end) const {
    const uint8_t* p = in_.data();
    switch (static_cast<SectionType>(p[q])) {
      case SectionType::kEof:
        return q + 1 == end || p[q + 1] == kType(SectionType::kVmDescription);
      case SectionType::kStart:
      case SectionType::kFull: {
        if (!Has(q, 6, end) || p[q + 5] == 0 || !Has(q, 6 + p[q + 5] + 8, end)) return false;
        for (size_t i = 0; i < p[q + 5]; ++i) {
          if (p[q + 6 + i] <= 0x20 || p[q + 6 + i] >= 0x7f) return false;
        }
        return true;
      }
      case SectionType::kPart:
      case SectionType::kEnd:
        return Has(q, 5, end) && idstrs_.count(LoadBe32(p + q + 1)) > 0;
      case SectionType::kCommand:
        return Has(q, 5, end) && p[q + 1] == 0 && p[q + 2] >= 1 && p[q + 2] <= 11 && p[q + 3] == 0;
      case SectionType::kVmDescription:
        return Has(q, 6, end) && p[q + 5] == '{';
      default:
        return false;
    }
  }

  absl::Span<const uint8_t> in_;
  std::map<uint32_t, std::string> idstrs_;  // section id -> idstr, as named so far
  std::map<std::pair<uint32_t, size_t>, size_t> no_footer_from_;
};

void Encode(const std::vector<Record>& records, StreamWriter& w) {
  for (const Record& r : records) {
    switch (r.kind) {
      case RecordKind::kHeader:
        w.Header(r.magic, r.version);
        break;
      case RecordKind::kConfiguration: {
        absl::string_view name(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        w.ConfigurationStart(r.auto_length ? static_cast<uint32_t>(name.size()) : r.declared, name);
        for (const Subsection& s : r.subsections) w.Subsection(s.name, s.version).Bytes(s.body);
        break;
      }
      case RecordKind::kSection:
        switch (static_cast<SectionType>(r.type)) {
          case SectionType::kStart:
            w.SectionStart(r.section_id, r.idstr, r.instance, r.version);
            break;
          case SectionType::kFull:
            w.SectionFull(r.section_id, r.idstr, r.instance, r.version);
            break;
          case SectionType::kPart:
            w.SectionPart(r.section_id);
            break;
          default:
            w.SectionEnd(r.section_id);
            break;
        }
        w.Bytes(r.payload);
        if (r.footer.has_value()) w.Footer(*r.footer);
        break;
      case RecordKind::kCommand:
        w.Command(r.number, r.auto_length ? static_cast<uint16_t>(r.payload.size()) : r.length,
                  r.payload);
        break;
      case RecordKind::kPackaged: {
        StreamWriter blob(w.profile().id);
        Encode(r.children, blob);
        const uint32_t declared = r.auto_length ? static_cast<uint32_t>(blob.size()) : r.declared;
        uint8_t length[4];
        StoreBe32(length, declared);
        w.Command(r.number, r.length, length).Bytes(blob.bytes());
        break;
      }
      case RecordKind::kEof:
        w.Eof();
        break;
      case RecordKind::kVmDescription: {
        absl::string_view json(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        w.VmDescription(r.auto_length ? static_cast<uint32_t>(json.size()) : r.declared, json);
        break;
      }
      case RecordKind::kOpaque:
        w.Bytes(r.payload);
        break;
    }
  }
}

void Describe(const std::vector<Record>& records, int depth, std::string& out) {
  for (const Record& r : records) {
    out.append(2 * depth, ' ');
    switch (r.kind) {
      case RecordKind::kHeader:
        absl::StrAppendFormat(&out, "HEADER magic=%08x version=%u", r.magic, r.version);
        break;
      case RecordKind::kConfiguration:
        absl::StrAppendFormat(
            &out, "CONFIGURATION declared=%u name='%s' subsections=%u", r.declared,
            absl::CHexEscape(absl::string_view(reinterpret_cast<const char*>(r.payload.data()),
                                               r.payload.size())),
            r.subsections.size());
        break;
      case RecordKind::kSection:
        absl::StrAppendFormat(&out, "%s id=%u", SectionTypeName(r.type), r.section_id);
        if (r.type == kType(SectionType::kStart) || r.type == kType(SectionType::kFull)) {
          absl::StrAppendFormat(&out, " '%s' instance=%u version=%u", absl::CHexEscape(r.idstr),
                                r.instance, r.version);
        }
        absl::StrAppendFormat(&out, " payload=%u", r.payload.size());
        if (r.footer.has_value()) absl::StrAppendFormat(&out, " footer=%u", *r.footer);
        break;
      case RecordKind::kCommand:
        absl::StrAppendFormat(&out, "COMMAND %u length=%u payload=%u", r.number, r.length,
                              r.payload.size());
        break;
      case RecordKind::kPackaged:
        absl::StrAppendFormat(&out, "PACKAGED declared=%u records=%u", r.declared,
                              r.children.size());
        break;
      case RecordKind::kEof:
        out += "EOF";
        break;
      case RecordKind::kVmDescription:
        absl::StrAppendFormat(&out, "VMDESCRIPTION declared=%u present=%u", r.declared,
                              r.payload.size());
        break;
      case RecordKind::kOpaque:
        absl::StrAppendFormat(&out, "OPAQUE %u bytes", r.payload.size());
        break;
    }
    out += '\n';
    if (r.kind == RecordKind::kPackaged) Describe(r.children, depth + 1, out);
  }
}

}  // namespace

bool operator==(const Subsection& a, const Subsection& b) {
  return std::tie(a.name, a.version, a.body) == std::tie(b.name, b.version, b.body);
}

bool operator==(const Record& a, const Record& b) {
  return std::tie(a.kind, a.type, a.magic, a.version, a.section_id, a.idstr, a.instance, a.footer,
                  a.number, a.length, a.declared, a.payload, a.subsections, a.children,
                  a.auto_length) == std::tie(b.kind, b.type, b.magic, b.version, b.section_id,
                                             b.idstr, b.instance, b.footer, b.number, b.length,
                                             b.declared, b.payload, b.subsections, b.children,
                                             b.auto_length);
}

std::vector<Record> DecodeRecords(absl::Span<const uint8_t> bytes) { return Decoder(bytes).Top(); }

std::vector<uint8_t> EncodeRecords(const std::vector<Record>& records) {
  StreamWriter w;
  Encode(records, w);
  return w.Take();
}

std::optional<size_t> WalkRamRecords(absl::Span<const uint8_t> payload,
                                     std::vector<size_t>* words) {
  const uint8_t* p = payload.data();
  const size_t end = payload.size();
  auto has = [end](size_t pos, size_t n) { return pos <= end && n <= end - pos; };
  size_t pos = 0;
  while (has(pos, 8)) {
    if (words != nullptr) words->push_back(pos);
    uint64_t word = LoadBe64(p + pos);
    pos += 8;
    uint32_t flags = static_cast<uint32_t>(word & kRamFlagBitsMask);
    uint32_t primary = flags & ~ram_flag::kContinue;
    switch (primary) {
      case ram_flag::kEos:
        return pos;
      case ram_flag::kHook:
      case ram_flag::kMultifdFlush:
        continue;
      case ram_flag::kMemSize: {
        uint64_t total = word & ~uint64_t{kRamFlagBitsMask}, sum = 0;
        while (sum < total) {
          if (!has(pos, 1) || p[pos] == 0 || !has(pos, 1 + p[pos] + 8)) return std::nullopt;
          pos += 1 + p[pos];
          uint64_t length = LoadBe64(p + pos);
          pos += 8;
          if (length == 0 || sum + length < sum) return std::nullopt;
          sum += length;
          if (has(pos, 8) && LooksLikeHugePageSize(LoadBe64(p + pos))) pos += 8;
        }
        continue;
      }
      case ram_flag::kZero:
      case ram_flag::kPage:
      case ram_flag::kXbzrle:
      case ram_flag::kCompressPage:
        break;
      default:
        return std::nullopt;
    }
    if ((flags & ram_flag::kContinue) == 0) {
      if (!has(pos, 1) || !has(pos, 1 + p[pos])) return std::nullopt;
      pos += 1 + p[pos];
    }
    size_t body = 0;
    if (primary == ram_flag::kZero) {
      body = 1;
    } else if (primary == ram_flag::kPage) {
      body = kTargetPageSize;
    } else if (primary == ram_flag::kXbzrle) {
      if (!has(pos, 3)) return std::nullopt;
      body = 3 + size_t{LoadBe16(p + pos + 1)};
    } else {
      if (!has(pos, 4)) return std::nullopt;
      body = 4 + size_t{LoadBe32(p + pos)};
    }
    if (!has(pos, body)) return std::nullopt;
    pos += body;
  }
  return std::nullopt;
}

std::string DescribeRecords(const std::vector<Record>& records) {
  std::string out;
  Describe(records, 0, out);
  return out;
}

}  // namespace qmig::fuzz
