#include "fuzz/stream_mutator.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <utility>

#include "parser/encode/stream_writer.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"
#include "parser/wire/limits.h"
#include "parser/wire/profile.h"

namespace qmig::fuzz {
namespace {

// splitmix64: tiny and the same everywhere (std:: distributions are not
// specified bit for bit, and a reproducer must replay the same way).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
  bool OneIn(size_t n) { return Below(n) == 0; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }

 private:
  uint64_t state_;
};

// Command numbers of the reference profile (Debian's QEMU 7.2); a mutation
// to another profile's numbering comes from kCommandNumber's random picks.
uint16_t Number(CommandKind kind) {
  return GetProfile(ProfileId::kQemu72).NumberOf(kind).value_or(0);
}

bool IsNamedSection(const Record& r) {
  return r.kind == RecordKind::kSection && (r.type == static_cast<uint8_t>(SectionType::kStart) ||
                                            r.type == static_cast<uint8_t>(SectionType::kFull));
}

// Makes every length field concrete, then marks the consistent ones as
// auto (see Record::auto_length). Children first: a package's size depends
// on them.
void Normalize(std::vector<Record>& records) {
  for (Record& r : records) {
    switch (r.kind) {
      case RecordKind::kCommand:
        if (r.auto_length) r.length = static_cast<uint16_t>(r.payload.size());
        r.auto_length = r.length == r.payload.size();
        break;
      case RecordKind::kConfiguration:
      case RecordKind::kVmDescription:
        if (r.auto_length) r.declared = static_cast<uint32_t>(r.payload.size());
        r.auto_length = r.declared == r.payload.size();
        break;
      case RecordKind::kPackaged: {
        Normalize(r.children);
        uint32_t size = static_cast<uint32_t>(EncodeRecords(r.children).size());
        if (r.auto_length) r.declared = size;
        r.auto_length = r.declared == size;
        break;
      }
      default:
        break;
    }
  }
}

// A record in one of the record lists of the tree.
struct Ref {
  std::vector<Record>* list;
  size_t index;
  Record& get() const { return (*list)[index]; }
};

void CollectLists(std::vector<Record>& records, std::vector<std::vector<Record>*>& out) {
  out.push_back(&records);
  for (Record& r : records) {
    if (r.kind == RecordKind::kPackaged) CollectLists(r.children, out);
  }
}

class Mutator {
 public:
  Mutator(std::vector<Record>& top, uint64_t seed, RawMutator raw)
      : top_(top), rng_(seed), raw_(raw) {}

  bool Apply(Mutation mutation) {
    switch (mutation) {
      case Mutation::kRawPayload:
        return RawPayload();
      case Mutation::kDelete:
        return Delete();
      case Mutation::kDuplicate:
        return Duplicate();
      case Mutation::kMove:
        return Move(Find([](const Record&) { return true; }));
      case Mutation::kSwap:
        return Swap();
      case Mutation::kInsertCommand:
        return Insert(NewCommand());
      case Mutation::kInsertRecord:
        return Insert(NewRecord());
      case Mutation::kWrapPackage:
        return Wrap();
      case Mutation::kUnwrapPackage:
        return Unwrap();
      case Mutation::kMoveListenRun:
        return MoveListenRun();
      case Mutation::kResize:
        return Resize();
      case Mutation::kCommandNumber:
        return CommandNumber();
      case Mutation::kRamFlags:
        return RamFlags();
      case Mutation::kSectionField:
        return SectionField();
      case Mutation::kFooter:
        return Footer();
      case Mutation::kHeader:
        return Header();
      default:
        return false;
    }
  }

 private:
  std::vector<Ref> Find(const std::function<bool(const Record&)>& keep) {
    std::vector<std::vector<Record>*> lists;
    CollectLists(top_, lists);
    std::vector<Ref> refs;
    for (std::vector<Record>* list : lists) {
      for (size_t i = 0; i < list->size(); ++i) {
        if (keep((*list)[i])) refs.push_back({list, i});
      }
    }
    return refs;
  }

  // Inserts at a random place of a random list; the lists are collected
  // afresh, since an earlier erase may have moved them.
  bool Insert(Record record) {
    std::vector<std::vector<Record>*> lists;
    CollectLists(top_, lists);
    std::vector<Record>& list = *lists[rng_.Below(lists.size())];
    size_t first =
        (&list == &top_ && !list.empty() && list[0].kind == RecordKind::kHeader && !rng_.OneIn(16))
            ? 1
            : 0;  // before the header only now and then
    list.insert(list.begin() + first + rng_.Below(list.size() - first + 1), std::move(record));
    return true;
  }

  void MutateBytes(std::vector<uint8_t>& bytes, size_t growth) {
    size_t size = bytes.size();
    size_t cap = size + growth;
    bytes.resize(cap);
    if (raw_ != nullptr && size > 0) {
      size = raw_(bytes.data(), size, cap);
    } else {
      size = BuiltinMutate(bytes.data(), size, cap);
    }
    bytes.resize(std::min(size, cap));
  }

  size_t BuiltinMutate(uint8_t* data, size_t size, size_t cap) {
    switch (size == 0 ? 2 : rng_.Below(4)) {
      case 0:
        data[rng_.Below(size)] ^= static_cast<uint8_t>(1u << rng_.Below(8));
        return size;
      case 1:
        data[rng_.Below(size)] = static_cast<uint8_t>(rng_.Next());
        return size;
      case 2: {
        if (size >= cap) return size;
        size_t at = rng_.Below(size + 1);
        std::memmove(data + at + 1, data + at, size - at);
        data[at] = static_cast<uint8_t>(rng_.Next());
        return size + 1;
      }
      default: {
        size_t at = rng_.Below(size);
        std::memmove(data + at, data + at + 1, size - at - 1);
        return size - 1;
      }
    }
  }

  std::vector<uint8_t> RandomBytes(size_t count) {
    std::vector<uint8_t> bytes(count);
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(rng_.Next());
    return bytes;
  }

  bool RawPayload() {
    std::vector<Ref> refs = Find([](const Record& r) {
      return r.kind != RecordKind::kHeader && r.kind != RecordKind::kEof &&
             r.kind != RecordKind::kPackaged;
    });
    if (refs.empty()) return false;
    Record& r = rng_.Pick(refs).get();
    if (r.kind == RecordKind::kConfiguration && !r.subsections.empty() && rng_.OneIn(2)) {
      MutateBytes(r.subsections[rng_.Below(r.subsections.size())].body, 16);
      return true;
    }
    MutateBytes(r.payload, 64);
    if (r.kind == RecordKind::kCommand && r.payload.size() > 0xffff) r.payload.resize(0xffff);
    return true;
  }

  bool Delete() {
    std::vector<Ref> refs = Find([](const Record&) { return true; });
    if (refs.empty()) return false;
    const Ref& ref = rng_.Pick(refs);
    ref.list->erase(ref.list->begin() + ref.index);
    return true;
  }

  bool Duplicate() {
    std::vector<Ref> refs = Find([](const Record&) { return true; });
    if (refs.empty()) return false;
    const Ref& ref = rng_.Pick(refs);
    Record copy = ref.get();
    if (rng_.OneIn(2)) {
      ref.list->insert(ref.list->begin() + ref.index + 1, std::move(copy));
      return true;
    }
    return Insert(std::move(copy));
  }

  bool Move(const std::vector<Ref>& refs) {
    if (refs.empty()) return false;
    const Ref& ref = rng_.Pick(refs);
    Record record = std::move(ref.get());
    ref.list->erase(ref.list->begin() + ref.index);
    return Insert(std::move(record));
  }

  bool Swap() {
    std::vector<std::vector<Record>*> lists;
    CollectLists(top_, lists);
    std::vector<std::vector<Record>*> usable;
    for (std::vector<Record>* list : lists) {
      if (list->size() >= 2) usable.push_back(list);
    }
    if (usable.empty()) return false;
    std::vector<Record>& list = *rng_.Pick(usable);
    size_t i = rng_.Below(list.size() - 1);
    size_t j = rng_.OneIn(2) ? i + 1 : rng_.Below(list.size());
    if (i == j) return false;
    std::swap(list[i], list[j]);
    return true;
  }

  // Names the stream already uses, so that new records refer to them.
  std::vector<std::string> Idstrs() {
    std::set<std::string> names = {std::string(kRamSectionName), "dirty-bitmap", "block", "timer",
                                   "cpu"};
    for (const Ref& ref : Find(IsNamedSection)) names.insert(ref.get().idstr);
    return {names.begin(), names.end()};
  }
  std::vector<uint32_t> SectionIds() {
    std::set<uint32_t> ids = {2};
    for (const Ref& ref : Find([](const Record& r) { return r.kind == RecordKind::kSection; })) {
      ids.insert(ref.get().section_id);
    }
    return {ids.begin(), ids.end()};
  }
  bool IdIsRam(uint32_t id) {
    for (const Ref& ref : Find(IsNamedSection)) {
      if (ref.get().section_id == id && ref.get().idstr == kRamSectionName) return true;
    }
    return false;
  }

  Record NewCommand() {
    Record r;
    r.kind = RecordKind::kCommand;
    r.auto_length = true;
    static constexpr CommandKind kKinds[] = {
        CommandKind::kOpenReturnPath, CommandKind::kPing,
        CommandKind::kPostcopyAdvise, CommandKind::kPostcopyListen,
        CommandKind::kPostcopyRun,    CommandKind::kPostcopyRamDiscard,
        CommandKind::kEnableColo,     CommandKind::kPostcopyResume,
        CommandKind::kRecvBitmap,     CommandKind::kSwitchoverStart};
    size_t choice = rng_.Below(std::size(kKinds) + 1);
    if (choice == std::size(kKinds)) {  // anything at all
      r.number = static_cast<uint16_t>(rng_.OneIn(2) ? rng_.Below(16) : rng_.Next());
      r.payload = RandomBytes(rng_.Below(24));
      return r;
    }
    CommandKind kind = kKinds[choice];
    r.number = Number(kind);
    switch (kind) {
      case CommandKind::kPing: {
        static constexpr uint32_t kValues[] = {0, 1, 2, 3, kPingPackagedLoaded, 0xffffffffu};
        uint32_t value = kValues[rng_.Below(std::size(kValues))];
        uint8_t bytes[4];
        StoreBe32(bytes, value);
        r.payload.assign(bytes, bytes + 4);
        break;
      }
      case CommandKind::kPostcopyAdvise:
        if (!rng_.OneIn(4)) r.payload = StreamWriter::AdvisePayload(4096, 4096);
        break;
      case CommandKind::kPostcopyRamDiscard: {
        uint64_t start = rng_.Below(16) * kTargetPageSize;
        r.payload =
            StreamWriter::RamDiscardPayload(BlockName(), {{start, (1 + rng_.Below(4)) * 4096}});
        break;
      }
      case CommandKind::kRecvBitmap: {
        std::string name = BlockName();
        r.payload.push_back(static_cast<uint8_t>(name.size()));
        r.payload.insert(r.payload.end(), name.begin(), name.end());
        break;
      }
      default:
        break;
    }
    return r;
  }

  // A block name the stream's MEM_SIZE lists, as far as a quick look finds.
  std::string BlockName() {
    std::vector<std::string> names = {"pc.ram"};
    for (const Ref& ref : Find([](const Record& r) { return r.kind == RecordKind::kSection; })) {
      const std::vector<uint8_t>& p = ref.get().payload;
      if (p.size() < 9 || (p[7] & ram_flag::kMemSize) == 0 || p[8] == 0) continue;
      if (9 + size_t{p[8]} <= p.size()) names.emplace_back(p.begin() + 9, p.begin() + 9 + p[8]);
    }
    return rng_.Pick(names);
  }

  Record NewRecord() {
    Record r;
    switch (rng_.Below(4)) {
      case 0:
        r.kind = RecordKind::kEof;
        return r;
      case 1:
        r.kind = RecordKind::kVmDescription;
        r.auto_length = true;
        r.payload = {'{', '}'};
        return r;
      default:
        break;
    }
    r.kind = RecordKind::kSection;
    static constexpr SectionType kTypes[] = {SectionType::kStart, SectionType::kPart,
                                             SectionType::kEnd, SectionType::kFull};
    r.type = static_cast<uint8_t>(kTypes[rng_.Below(4)]);
    r.section_id = rng_.Pick(SectionIds());
    if (IsNamedSection(r)) {
      r.idstr = rng_.Pick(Idstrs());
      r.version = r.idstr == kRamSectionName ? kRamSectionVersion : 1 + rng_.Below(4);
    }
    if (IdIsRam(r.section_id) || r.idstr == kRamSectionName) {
      StreamWriter ram;
      if (rng_.OneIn(2)) ram.RamZero(BlockName(), rng_.Below(16) * kTargetPageSize);
      r.payload = ram.RamEos().Take();
    } else {
      r.payload = RandomBytes(rng_.Below(16));
    }
    if (!rng_.OneIn(4)) r.footer = r.section_id;
    return r;
  }

  bool Wrap() {
    std::vector<std::vector<Record>*> lists;
    CollectLists(top_, lists);
    std::vector<Record>& list = *lists[rng_.Below(lists.size())];
    size_t first = rng_.Below(list.size() + 1);
    size_t count = rng_.OneIn(8) ? 0 : 1 + rng_.Below(std::min<size_t>(8, list.size() - first));
    count = std::min(count, list.size() - first);
    Record package;
    package.kind = RecordKind::kPackaged;
    package.number = Number(CommandKind::kPackaged);
    package.length = 4;
    package.auto_length = true;
    package.children.assign(std::make_move_iterator(list.begin() + first),
                            std::make_move_iterator(list.begin() + first + count));
    list.erase(list.begin() + first, list.begin() + first + count);
    list.insert(list.begin() + first, std::move(package));
    return true;
  }

  bool Unwrap() {
    std::vector<Ref> refs = Find([](const Record& r) { return r.kind == RecordKind::kPackaged; });
    if (refs.empty()) return false;
    const Ref& ref = rng_.Pick(refs);
    std::vector<Record> children = std::move(ref.get().children);
    ref.list->erase(ref.list->begin() + ref.index);
    ref.list->insert(ref.list->begin() + ref.index, std::make_move_iterator(children.begin()),
                     std::make_move_iterator(children.end()));
    return true;
  }

  bool MoveListenRun() {
    const uint16_t listen = Number(CommandKind::kPostcopyListen);
    const uint16_t run = Number(CommandKind::kPostcopyRun);
    std::vector<Ref> refs = Find([&](const Record& r) {
      return r.kind == RecordKind::kCommand && (r.number == listen || r.number == run);
    });
    if (!refs.empty() && !rng_.OneIn(4)) return Move(refs);
    Record r;
    r.kind = RecordKind::kCommand;
    r.number = rng_.OneIn(2) ? listen : run;
    r.auto_length = true;
    return Insert(std::move(r));
  }

  bool Resize() {
    std::vector<Ref> refs = Find([](const Record& r) {
      return r.kind == RecordKind::kCommand || r.kind == RecordKind::kPackaged ||
             r.kind == RecordKind::kConfiguration || r.kind == RecordKind::kVmDescription;
    });
    if (refs.empty()) return false;
    Record& r = rng_.Pick(refs).get();
    if (rng_.OneIn(2)) {  // consistently: the content changes size, the field follows
      r.auto_length = true;
      if (r.kind == RecordKind::kPackaged) {
        if (!r.children.empty() && rng_.OneIn(2)) {
          r.children.pop_back();
        } else if (!r.children.empty()) {
          r.children.push_back(r.children[rng_.Below(r.children.size())]);
        }
      } else if (!r.payload.empty() && rng_.OneIn(2)) {
        r.payload.resize(rng_.Below(r.payload.size()));
      } else {
        std::vector<uint8_t> more = RandomBytes(1 + rng_.Below(16));
        r.payload.insert(r.payload.end(), more.begin(), more.end());
        if (r.payload.size() > 0xffff) r.payload.resize(0xffff);
      }
      return true;
    }
    // Inconsistently: off by a small delta, or an extreme.
    uint64_t actual =
        r.kind == RecordKind::kPackaged ? EncodeRecords(r.children).size() : r.payload.size();
    uint64_t delta = 1 + rng_.Below(8);
    uint64_t value = rng_.OneIn(2) ? actual + delta : actual - delta;
    if (rng_.OneIn(8)) value = rng_.OneIn(2) ? 0 : UINT64_MAX;
    r.auto_length = false;
    if (r.kind == RecordKind::kCommand) {
      r.length = static_cast<uint16_t>(value);
    } else {
      r.declared = static_cast<uint32_t>(value);
    }
    return true;
  }

  bool CommandNumber() {
    std::vector<Ref> refs = Find([](const Record& r) {
      return r.kind == RecordKind::kCommand || r.kind == RecordKind::kPackaged;
    });
    if (refs.empty()) return false;
    Record& r = rng_.Pick(refs).get();
    static constexpr CommandKind kStateChanging[] = {
        CommandKind::kPostcopyAdvise, CommandKind::kPostcopyListen,
        CommandKind::kPostcopyRun,    CommandKind::kPostcopyRamDiscard,
        CommandKind::kPackaged,       CommandKind::kPostcopyResume,
        CommandKind::kRecvBitmap,     CommandKind::kSwitchoverStart,
        CommandKind::kOpenReturnPath, CommandKind::kEnableColo};
    uint16_t before = r.number;
    switch (rng_.Below(4)) {
      case 0:
      case 1:
        r.number = Number(kStateChanging[rng_.Below(std::size(kStateChanging))]);
        break;
      case 2:
        r.number = static_cast<uint16_t>(rng_.Below(16));
        break;
      default:
        r.number = static_cast<uint16_t>(rng_.Next());
        break;
    }
    // A package keeps its kind: re-encoded with another number, its blob
    // becomes records of the enclosing list.
    return r.number != before;
  }

  bool RamFlags() {
    std::vector<std::pair<Ref, std::vector<size_t>>> candidates;
    for (const Ref& ref : Find([](const Record& r) { return r.kind == RecordKind::kSection; })) {
      std::vector<size_t> words;
      if (WalkRamRecords(ref.get().payload, &words).has_value()) {
        candidates.emplace_back(ref, std::move(words));
      }
    }
    if (candidates.empty()) return false;
    const auto& [ref, words] = rng_.Pick(candidates);
    uint8_t* at = ref.get().payload.data() + rng_.Pick(words);
    uint64_t word = LoadBe64(at);
    const uint64_t flags = word & kRamFlagBitsMask;
    const uint64_t address = word & ~uint64_t{kRamFlagBitsMask};
    static constexpr uint32_t kPrimary[] = {
        ram_flag::kFull, ram_flag::kZero,         ram_flag::kMemSize,
        ram_flag::kPage, ram_flag::kEos,          ram_flag::kXbzrle,
        ram_flag::kHook, ram_flag::kCompressPage, ram_flag::kMultifdFlush};
    switch (rng_.Below(5)) {
      case 0:  // one flag bit
        word ^= uint64_t{1} << rng_.Below(12);
        break;
      case 1:
        word ^= ram_flag::kContinue;
        break;
      case 2:  // another record type, CONTINUE kept
        word = address | (flags & ram_flag::kContinue) | kPrimary[rng_.Below(std::size(kPrimary))];
        break;
      case 3: {  // a nearby page, or a far one
        uint64_t step = kTargetPageSize * (1 + rng_.Below(4));
        uint64_t moved = rng_.OneIn(2) ? address + step : address - step;
        if (rng_.OneIn(4)) moved = rng_.Next() & ~uint64_t{kRamFlagBitsMask};
        word = (moved & ~uint64_t{kRamFlagBitsMask}) | flags;
        break;
      }
      default:  // a MEM_SIZE total (or any address) off by a page
        word = ((rng_.OneIn(2) ? address + kTargetPageSize : address - kTargetPageSize) &
                ~uint64_t{kRamFlagBitsMask}) |
               flags;
        break;
    }
    StoreBe64(at, word);
    return true;
  }

  bool SectionField() {
    std::vector<Ref> refs = Find([](const Record& r) { return r.kind == RecordKind::kSection; });
    if (refs.empty()) return false;
    Record& r = rng_.Pick(refs).get();
    const bool named = IsNamedSection(r);
    switch (rng_.Below(5)) {
      case 0: {  // id
        uint32_t choices[] = {rng_.Pick(SectionIds()), r.section_id + 1, r.section_id - 1,
                              static_cast<uint32_t>(rng_.Below(8)),
                              static_cast<uint32_t>(rng_.Next())};
        r.section_id = choices[rng_.Below(std::size(choices))];
        if (r.footer.has_value() && !rng_.OneIn(4)) r.footer = r.section_id;
        return true;
      }
      case 1: {  // type
        using T = SectionType;
        if (named) {
          r.type = static_cast<uint8_t>(
              rng_.OneIn(2) ? (r.type == static_cast<uint8_t>(T::kStart) ? T::kFull : T::kStart)
                            : (rng_.OneIn(2) ? T::kPart : T::kEnd));
          if (!IsNamedSection(r)) {
            r.idstr.clear();
            r.instance = 0;
            r.version = 0;
          }
        } else {
          r.type = static_cast<uint8_t>(
              rng_.OneIn(2) ? (r.type == static_cast<uint8_t>(T::kPart) ? T::kEnd : T::kPart)
                            : (rng_.OneIn(2) ? T::kStart : T::kFull));
          if (IsNamedSection(r)) {
            r.idstr = IdIsRam(r.section_id) ? std::string(kRamSectionName) : rng_.Pick(Idstrs());
            r.version = r.idstr == kRamSectionName ? kRamSectionVersion : 1;
          }
        }
        return true;
      }
      case 2:  // idstr
        if (!named) return false;
        if (rng_.OneIn(2)) {
          r.idstr = rng_.Pick(Idstrs());
        } else {
          std::vector<uint8_t> bytes(r.idstr.begin(), r.idstr.end());
          MutateBytes(bytes, 8);
          r.idstr.assign(bytes.begin(), bytes.begin() + std::min<size_t>(bytes.size(), 255));
        }
        return true;
      case 3: {  // version
        if (!named) return false;
        uint32_t choices[] = {r.version + 1,
                              r.version - 1,
                              0,
                              static_cast<uint32_t>(rng_.Below(8)),
                              kMaxSectionVersion + 1,
                              static_cast<uint32_t>(rng_.Next())};
        r.version = choices[rng_.Below(std::size(choices))];
        return true;
      }
      default: {  // instance
        if (!named) return false;
        uint32_t choices[] = {r.instance + 1, r.instance - 1, 0,
                              static_cast<uint32_t>(rng_.Next())};
        r.instance = choices[rng_.Below(std::size(choices))];
        return true;
      }
    }
  }

  bool Footer() {
    std::vector<Ref> refs = Find([](const Record& r) { return r.kind == RecordKind::kSection; });
    if (refs.empty()) return false;
    Record& r = rng_.Pick(refs).get();
    if (!r.footer.has_value()) {
      r.footer = r.section_id;
    } else if (rng_.OneIn(3)) {
      r.footer.reset();
    } else {
      uint32_t choices[] = {*r.footer + 1, *r.footer - 1, rng_.Pick(SectionIds()),
                            static_cast<uint32_t>(rng_.Next())};
      r.footer = choices[rng_.Below(std::size(choices))];
    }
    return true;
  }

  bool Header() {
    if (top_.empty() || top_[0].kind != RecordKind::kHeader) {
      Record header;
      header.kind = RecordKind::kHeader;
      header.magic = kFileMagic;
      header.version = kFileVersion;
      top_.insert(top_.begin(), std::move(header));
      return true;
    }
    Record& header = top_[0];
    switch (rng_.Below(4)) {
      case 0:
        top_.erase(top_.begin());
        return true;
      case 1:
        header.version = header.version == kFileVersion ? kFileVersionObsolete : kFileVersion;
        return true;
      case 2:
        header.version = static_cast<uint32_t>(rng_.OneIn(2) ? rng_.Below(8) : rng_.Next());
        return true;
      default:
        header.magic ^= uint32_t{1} << rng_.Below(32);
        return true;
    }
  }

  std::vector<Record>& top_;
  Rng rng_;
  RawMutator raw_;
};

size_t RawBytes(uint8_t* data, size_t size, size_t max_size, Rng& rng, RawMutator raw) {
  if (raw != nullptr) return raw(data, size, max_size);
  // No byte mutator: flip one bit, the least that changes the input.
  if (size == 0) return 0;
  data[rng.Below(size)] ^= static_cast<uint8_t>(1u << rng.Below(8));
  return size;
}

}  // namespace

absl::string_view MutationName(Mutation mutation) {
  static constexpr absl::string_view kNames[] = {
      "raw-bytes",      "raw-payload",    "delete",          "duplicate",
      "move",           "swap",           "insert-command",  "insert-record",
      "wrap-package",   "unwrap-package", "move-listen-run", "resize",
      "command-number", "ram-flags",      "section-field",   "footer",
      "header"};
  size_t index = static_cast<size_t>(mutation);
  return index < std::size(kNames) ? kNames[index] : "?";
}

bool ApplyMutation(std::vector<Record>& records, Mutation mutation, uint64_t seed, RawMutator raw) {
  Normalize(records);
  return Mutator(records, seed, raw).Apply(mutation);
}

size_t MutateStream(uint8_t* data, size_t size, size_t max_size, unsigned int seed, RawMutator raw,
                    Mutation* applied) {
  Rng rng(seed);
  if (applied != nullptr) *applied = Mutation::kRawBytes;
  if (size == 0 || size > max_size || rng.OneIn(6)) {
    return RawBytes(data, std::min(size, max_size), max_size, rng, raw);
  }
  std::vector<Record> records = DecodeRecords(absl::MakeConstSpan(data, size));
  Normalize(records);
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::vector<Record> mutated = records;
    auto mutation = static_cast<Mutation>(1 + rng.Below(static_cast<size_t>(Mutation::kCount) - 1));
    if (!Mutator(mutated, rng.Next(), raw).Apply(mutation)) continue;
    std::vector<uint8_t> bytes = EncodeRecords(mutated);
    if (bytes.size() > max_size ||
        (bytes.size() == size && std::memcmp(bytes.data(), data, size) == 0)) {
      continue;
    }
    if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
    if (applied != nullptr) *applied = mutation;
    return bytes.size();
  }
  return RawBytes(data, size, max_size, rng, raw);
}

size_t CrossOverStreams(const uint8_t* data1, size_t size1, const uint8_t* data2, size_t size2,
                        uint8_t* out, size_t max_out_size, unsigned int seed) {
  Rng rng(seed);
  std::vector<Record> first = DecodeRecords(absl::MakeConstSpan(data1, size1));
  std::vector<Record> second = DecodeRecords(absl::MakeConstSpan(data2, size2));
  Normalize(first);
  Normalize(second);
  std::vector<std::vector<Record>*> from, to;
  CollectLists(second, from);
  CollectLists(first, to);
  const std::vector<Record>& source = *from[rng.Below(from.size())];
  if (source.empty()) return 0;
  size_t begin = rng.Below(source.size());
  for (size_t count = 1 + rng.Below(std::min<size_t>(8, source.size() - begin)); count > 0;
       count /= 2) {
    std::vector<Record> merged = first;
    std::vector<std::vector<Record>*> lists;
    CollectLists(merged, lists);
    std::vector<Record>& target = *lists[rng.Below(lists.size())];
    target.insert(target.begin() + rng.Below(target.size() + 1), source.begin() + begin,
                  source.begin() + begin + count);
    std::vector<uint8_t> bytes = EncodeRecords(merged);
    if (bytes.size() <= max_out_size) {
      if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
      return bytes.size();
    }
  }
  return 0;
}

}  // namespace qmig::fuzz
