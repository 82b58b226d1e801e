#include "parser/vmstate/compat.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

// The rules, and the QEMU behaviour each rests on (migration/savevm.c and
// migration/vmstate.c, 7.2 to 11.1):
//
// machine.missing   QEMU cannot start the destination with that machine type.
// machine.differs   The stream's CONFIGURATION names another machine type than
//                   the destination runs: its loader refuses ("Machine type
//                   received is ... and local is ...").
// section.*         A section is found by idstr and instance among the
//                   destination's registered state ("Unknown savevm section");
//                   -dump-vmstate lists device classes only, so a section it
//                   does not list is *not checked*, never called unknown: cpu,
//                   timer, apic or ram are registered otherwise, and 7.2 even
//                   registers its IDE controller's state outside its class.
// version.too_new   A version above the destination vmsd's version_id:
//                   "unsupported version" (find_se) / vmstate_load_state.
// version.too_old   A version below its minimum_version_id: vmstate_load_state
//                   refuses it.
// subsection.unknown A subsection sent that the destination's vmsd does not
//                   list: "VM subsection '...' in '...' does not exist".
//                   QEMU sends a subsection only when its needed() says so, so
//                   for a source dump this is "fails if it is sent".
// subsection.version A subsection's version outside the destination's bounds.
// fields.size       The destination reads the fields at the stream's version
//                   from its own vmsd, by position (names do not matter). When
//                   the stream's description shows fixed-width fields whose
//                   sizes differ from the destination's and nothing else is in
//                   doubt, the bytes read and sent differ by a known amount:
//                   the next subsection or the section footer is not where
//                   QEMU looks ("Missing section footer"), so with footers it
//                   refuses. Any other difference is fields.differ: cannot tell.
//
// vmstate-static-checker.py applies the version, subsection and field-size
// rules to two dumps; it does not know what a stream carries.

namespace qmig {
namespace {

// VMStateInfo names whose wire size is the C size -dump-vmstate prints.
bool FixedWidth(absl::string_view type) {
  static constexpr absl::string_view kTypes[] = {
      "bool",        "int8",         "uint8",       "int16",    "uint16",      "int32",
      "uint32",      "int64",        "uint64",      "int32 le", "uint8 equal", "uint16 equal",
      "int32 equal", "uint32 equal", "int64 equal", "float64",  "CPU_Double_U"};
  return std::find(std::begin(kTypes), std::end(kTypes), type) != std::end(kTypes);
}

int Rank(CompatStatus status) {
  switch (status) {
    case CompatStatus::kFails:
      return 3;
    case CompatStatus::kUnknown:
      return 2;
    case CompatStatus::kLoads:
      return 1;
    case CompatStatus::kNotChecked:
      return 0;
  }
  return 0;
}

CompatStatus Worst(const std::vector<CompatReason>& reasons, CompatStatus base) {
  CompatStatus out = base;
  for (const CompatReason& reason : reasons) {
    if (Rank(reason.status) > Rank(out)) out = reason.status;
  }
  return out;
}

std::string Quote(absl::string_view name) { return absl::StrCat("'", EscapeName(name), "'"); }

std::string Bytes(uint64_t n) { return absl::StrCat(n, n == 1 ? " byte" : " bytes"); }

std::string Bounds(uint32_t minimum, uint32_t version) {
  return minimum == version ? absl::StrCat("version ", version)
                            : absl::StrCat("versions ", minimum, " to ", version);
}

// What comparing two lists of fields found: whether they differ, and when
// every difference has a known size, by how many bytes the destination
// reads more (negative: fewer) than the source sent.
struct BodyResult {
  bool differs = false;
  bool certain = true;
  absl::int128 delta = 0;
  std::string first;  // the first difference, for people

  void Note(std::string what, std::optional<absl::int128> bytes) {
    differs = true;
    if (first.empty()) first = std::move(what);
    if (bytes.has_value()) {
      delta += *bytes;
    } else {
      certain = false;
    }
    Clamp();
  }
  // Adds a nested result `count` times.
  void Add(const BodyResult& inner, uint64_t count) {
    if (!inner.differs) return;
    differs = true;
    if (first.empty()) first = inner.first;
    if (!inner.certain) {
      certain = false;
    } else {
      delta += inner.delta * count;
    }
    Clamp();
  }
  void Clamp() {
    const absl::int128 kLimit = absl::int128(1) << 62;
    if (delta > kLimit || delta < -kLimit) {
      certain = false;
      delta = 0;
    }
  }
};

struct Context {
  bool footers = true;
  std::vector<CompatReason> reasons;
};

// ---------------------------------------------------------------------------
// A stream's description against the destination's dump.

// One field as the stream sent it. QEMU's description names a vmsd's
// fields uniquely (a repeated name gets "[k]" appended), so consecutive
// entries of one name are the elements of one array: those it cannot
// compress into one entry with "array_len", with or without "index", and the
// runs it splits pointer arrays into (10.0 on).
struct SentField {
  std::string name;                    // as the destination names it: without "[k]"
  std::optional<uint64_t> occurrence;  // k of "name[k]": the k-th field of that name
  std::string type;
  uint64_t element_size = 0;
  uint64_t count = 0;
  bool uniform = true;  // every element has the same type and size
  std::vector<const VmsdDescription*> subs;
};

// "config[1]" -> "config" and 1.
std::pair<absl::string_view, std::optional<uint64_t>> SplitName(absl::string_view name) {
  if (name.empty() || name.back() != ']') return {name, std::nullopt};
  const size_t open = name.rfind('[');
  if (open == absl::string_view::npos || open + 2 > name.size() - 1 || name.size() - open > 12) {
    return {name, std::nullopt};
  }
  uint64_t k = 0;
  for (size_t i = open + 1; i + 1 < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return {name, std::nullopt};
    k = k * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return {name.substr(0, open), k};
}

std::vector<SentField> GatherSent(const std::vector<VmstateField>& fields) {
  std::vector<SentField> out;
  const VmstateField* previous = nullptr;
  for (const VmstateField& field : fields) {
    const uint64_t count = field.array_len > 0 ? field.array_len : 1;
    if (previous != nullptr && previous->name == field.name) {
      SentField& last = out.back();
      if (field.type != last.type || field.size != last.element_size) last.uniform = false;
      last.count += count;
      if (field.sub != nullptr) last.subs.push_back(field.sub.get());
    } else {
      const auto [base, occurrence] = SplitName(field.name);
      SentField sent{std::string(base), occurrence, field.type, field.size, count, true, {}};
      if (field.sub != nullptr) sent.subs.push_back(field.sub.get());
      out.push_back(std::move(sent));
    }
    previous = &field;
  }
  return out;
}

void CheckSentSubsections(const VmsdDescription& sent, const DumpVmsd& dest,
                          const std::string& where, Context& ctx, size_t depth);

BodyResult CompareSentBody(const VmsdDescription& sent, const DumpVmsd& dest, uint32_t version,
                           const std::string& prefix, Context& ctx, size_t depth);

void CompareSentPair(const SentField& sf, const DumpField& df, const std::string& where,
                     BodyResult& result, Context& ctx, size_t depth) {
  const VmsdDescription* sub = sf.subs.empty() ? nullptr : sf.subs.front();
  if (df.sub != nullptr && sub != nullptr) {
    if (df.num.has_value() && *df.num != sf.count) {
      result.Note(absl::StrCat("field ", Quote(where), ": ", sf.count,
                               " elements sent, the destination reads ", *df.num),
                  std::nullopt);
    }
    // Each element may carry its own subsections.
    for (const VmsdDescription* element : sf.subs) {
      CheckSentSubsections(*element, *df.sub, where, ctx, depth + 1);
    }
    // A struct is loaded with the destination's own version of its vmsd.
    result.Add(CompareSentBody(*sub, *df.sub, df.sub->version_id, absl::StrCat(where, "."), ctx,
                               depth + 1),
               sf.count);
    return;
  }
  if ((df.sub != nullptr) != (sub != nullptr)) {
    result.Note(absl::StrCat("field ", Quote(where), " is a struct on one side only"),
                std::nullopt);
    return;
  }
  constexpr uint64_t kMaxComparable = uint64_t{1} << 32;
  if (!FixedWidth(sf.type) || !sf.uniform || df.size > kMaxComparable ||
      sf.element_size > kMaxComparable) {
    return;  // the dump's C size says nothing sure about these on the wire
  }
  const uint64_t dest_count = df.num.value_or(sf.count);
  if (df.size == sf.element_size && dest_count == sf.count) return;
  const absl::int128 sent_bytes = absl::int128(sf.element_size) * sf.count;
  const absl::int128 read_bytes = absl::int128(df.size) * dest_count;
  auto shape = [](uint64_t count, uint64_t size) {
    return count == 1 ? Bytes(size) : absl::StrCat(count, " x ", Bytes(size));
  };
  result.Note(absl::StrCat("field ", Quote(where), ": the stream carries ",
                           shape(sf.count, sf.element_size), ", the destination reads ",
                           shape(dest_count, df.size)),
              read_bytes - sent_bytes);
}

BodyResult CompareSentBody(const VmsdDescription& sent, const DumpVmsd& dest, uint32_t version,
                           const std::string& prefix, Context& ctx, size_t depth) {
  BodyResult result;
  if (depth > kMaxVmstateDepth) {
    result.Note("descriptions nest too deep to compare", std::nullopt);
    return result;
  }
  const std::vector<SentField> sent_fields = GatherSent(sent.fields);
  // The destination's fields loaded at this version, each with which
  // occurrence of its name it is.
  struct Loaded {
    const DumpField* field;
    uint64_t occurrence;
  };
  std::vector<Loaded> loaded;
  std::map<absl::string_view, uint64_t> seen;
  for (const DumpField& df : dest.fields) {
    const uint64_t occurrence = seen[df.name]++;
    if (df.version_id <= version) loaded.push_back({&df, occurrence});
  }
  auto same = [](const SentField& sf, const Loaded& d) {
    return sf.name == d.field->name && (!sf.occurrence || *sf.occurrence == d.occurrence);
  };
  size_t i = 0;
  for (size_t j = 0; j < loaded.size(); ++j) {
    const DumpField& df = *loaded[j].field;
    const bool at_end = i == sent_fields.size();
    if (!at_end && same(sent_fields[i], loaded[j])) {
      const SentField& sf = sent_fields[i++];
      CompareSentPair(sf, df, prefix + sf.name, result, ctx, depth);
      continue;
    }
    // A field its exists() decides is taken as not sent when the stream has
    // none of its name here.
    if (df.conditional) continue;
    // The description leaves out arrays of no elements: a field without a
    // fixed length may be one, when what follows lines up without it.
    if (!df.num.has_value() &&
        (at_end || (j + 1 < loaded.size() && same(sent_fields[i], loaded[j + 1])))) {
      continue;
    }
    if (at_end) {
      result.Note(absl::StrCat("the destination reads field ", Quote(prefix + df.name),
                               ", which the stream does not carry"),
                  std::nullopt);
      continue;
    }
    // Otherwise by position: a renamed field reads the same bytes.
    const SentField& sf = sent_fields[i++];
    CompareSentPair(sf, df, prefix + sf.name, result, ctx, depth);
  }
  for (; i < sent_fields.size(); ++i) {
    result.Note(absl::StrCat("the stream carries field ", Quote(prefix + sent_fields[i].name),
                             ", which the destination does not read"),
                std::nullopt);
  }
  return result;
}

// The verdict on one body's fields: refused only when the difference in
// bytes is known and footers make QEMU notice.
void JudgeBody(const BodyResult& body, const std::string& where, Context& ctx) {
  if (!body.differs) return;
  if (body.certain && body.delta != 0 && ctx.footers) {
    const bool more = body.delta > 0;
    ctx.reasons.push_back(
        {"fields.size", CompatStatus::kFails,
         absl::StrCat(where, body.first, ": QEMU reads ",
                      Bytes(absl::Int128Low64(more ? body.delta : -body.delta)), " ",
                      more ? "more" : "fewer",
                      " than were sent, so the section's end is not where it looks (Missing "
                      "section footer)")});
    return;
  }
  std::string why;
  if (!body.certain) {
    why = "the layouts differ where sizes are not known";
  } else if (body.delta == 0) {
    why = "as many bytes in all, but the values would be misread";
  } else {
    why = "the stream has no section footers to catch the difference";
  }
  ctx.reasons.push_back(
      {"fields.differ", CompatStatus::kUnknown, absl::StrCat(where, body.first, " (", why, ")")});
}

void CheckSentSubsections(const VmsdDescription& sent, const DumpVmsd& dest,
                          const std::string& where, Context& ctx, size_t depth) {
  if (depth > kMaxVmstateDepth) return;
  for (const VmsdDescription& sub : sent.subsections) {
    const DumpVmsd* known = dest.FindSubsection(sub.vmsd_name);
    const std::string name = Quote(sub.vmsd_name);
    if (known == nullptr) {
      ctx.reasons.push_back(
          {"subsection.unknown", CompatStatus::kFails,
           absl::StrCat(where.empty() ? "" : absl::StrCat(Quote(where), ": "), "subsection ", name,
                        " was sent and the destination's ", Quote(dest.name),
                        " has none of that name (VM subsection ", name, " in ", Quote(dest.name),
                        " does not exist)")});
      continue;
    }
    if (sub.version > known->version_id || sub.version < known->minimum_version_id) {
      ctx.reasons.push_back(
          {"subsection.version", CompatStatus::kFails,
           absl::StrCat(where.empty() ? "" : absl::StrCat(Quote(where), ": "), "subsection ", name,
                        " was sent as version ", sub.version, "; the destination accepts ",
                        Bounds(known->minimum_version_id, known->version_id))});
      continue;
    }
    JudgeBody(CompareSentBody(sub, *known, sub.version, "", ctx, depth + 1),
              absl::StrCat("subsection ", name, ": "), ctx);
    CheckSentSubsections(sub, *known, where, ctx, depth + 1);
  }
}

// ---------------------------------------------------------------------------
// A source's dump against the destination's dump.

void CheckDeclaredSubsections(const DumpVmsd& src, const DumpVmsd& dest, const std::string& where,
                              Context& ctx, size_t depth);

BodyResult CompareDeclaredBody(const DumpVmsd& src, uint32_t src_version, const DumpVmsd& dest,
                               uint32_t dest_version, const std::string& prefix, Context& ctx,
                               size_t depth) {
  BodyResult result;
  if (depth > kMaxVmstateDepth) {
    result.Note("descriptions nest too deep to compare", std::nullopt);
    return result;
  }
  std::vector<const DumpField*> a, b;
  for (const DumpField& f : src.fields) {
    if (f.version_id <= src_version) a.push_back(&f);
  }
  for (const DumpField& f : dest.fields) {
    if (f.version_id <= dest_version) b.push_back(&f);
  }
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i == a.size() || j == b.size()) {
      const bool source_side = i < a.size();
      const DumpField& f = source_side ? *a[i++] : *b[j++];
      result.Note(
          absl::StrCat(source_side ? "the source may send field " : "the destination reads field ",
                       Quote(prefix + f.name),
                       source_side ? ", which the destination does not read"
                                   : ", which the source does not send"),
          std::nullopt);
      continue;
    }
    const DumpField& sf = *a[i];
    const DumpField& df = *b[j];
    if (sf.name != df.name && (sf.conditional || df.conditional)) {
      const bool skip_source = sf.conditional;
      const DumpField& f = skip_source ? sf : df;
      result.Note(absl::StrCat(skip_source ? "the source may send field "
                                           : "the destination may read field ",
                               Quote(prefix + f.name), ", which the other side does not have"),
                  std::nullopt);
      (skip_source ? i : j)++;
      continue;
    }
    ++i, ++j;
    const std::string where = prefix + sf.name;
    if (sf.sub != nullptr && df.sub != nullptr) {
      if (sf.num != df.num && sf.num.has_value() && df.num.has_value()) {
        result.Note(absl::StrCat("field ", Quote(where), ": ", *sf.num,
                                 " elements, the destination ", *df.num),
                    std::nullopt);
      }
      CheckDeclaredSubsections(*sf.sub, *df.sub, where, ctx, depth + 1);
      result.Add(CompareDeclaredBody(*sf.sub, sf.sub->version_id, *df.sub, df.sub->version_id,
                                     absl::StrCat(where, "."), ctx, depth + 1),
                 1);
      continue;
    }
    if ((sf.sub != nullptr) != (df.sub != nullptr)) {
      result.Note(absl::StrCat("field ", Quote(where), " is a struct on one side only"),
                  std::nullopt);
      continue;
    }
    if (sf.size != df.size || (sf.num.has_value() && df.num.has_value() && *sf.num != *df.num)) {
      result.Note(absl::StrCat("field ", Quote(where), ": ", Bytes(sf.size),
                               sf.num ? absl::StrCat(" x ", *sf.num) : "", " at the source, ",
                               Bytes(df.size), df.num ? absl::StrCat(" x ", *df.num) : "",
                               " at the destination"),
                  std::nullopt);
    }
  }
  return result;
}

// Dumps carry C sizes and no types: a difference is never sure on the wire.
void JudgeDeclaredBody(const BodyResult& body, const std::string& where, Context& ctx) {
  if (!body.differs) return;
  ctx.reasons.push_back(
      {"fields.differ", CompatStatus::kUnknown,
       absl::StrCat(where, body.first, " (a dump gives C sizes, not what goes on the wire)")});
}

void CheckDeclaredSubsections(const DumpVmsd& src, const DumpVmsd& dest, const std::string& where,
                              Context& ctx, size_t depth) {
  if (depth > kMaxVmstateDepth) return;
  for (const DumpVmsd& sub : src.subsections) {
    const DumpVmsd* known = dest.FindSubsection(sub.name);
    const std::string name = Quote(sub.name);
    if (known == nullptr) {
      ctx.reasons.push_back(
          {"subsection.unknown", CompatStatus::kUnknown,
           absl::StrCat(where.empty() ? "" : absl::StrCat(Quote(where), ": "), "subsection ", name,
                        " is not known to the destination's ", Quote(dest.name),
                        ": it fails if the source sends it (its needed() decides)")});
      continue;
    }
    if (sub.version_id > known->version_id || sub.version_id < known->minimum_version_id) {
      ctx.reasons.push_back({"subsection.version", CompatStatus::kUnknown,
                             absl::StrCat("subsection ", name, " is version ", sub.version_id,
                                          "; the destination accepts ",
                                          Bounds(known->minimum_version_id, known->version_id),
                                          ": it fails if the source sends it")});
      continue;
    }
    JudgeDeclaredBody(
        CompareDeclaredBody(sub, sub.version_id, *known, sub.version_id, "", ctx, depth + 1),
        absl::StrCat("subsection ", name, ": "), ctx);
    CheckDeclaredSubsections(sub, *known, where, ctx, depth + 1);
  }
}

// ---------------------------------------------------------------------------
// Devices.

// The verdict of one destination vmsd on one source device.
std::vector<CompatReason> JudgeOnce(const CompatSourceDevice& device, const DumpVmsd& dest,
                                    bool footers);

// Each reason once (QEMU's dumps may list a subsection twice).
std::vector<CompatReason> Judge(const CompatSourceDevice& device, const DumpVmsd& dest,
                                bool footers) {
  std::vector<CompatReason> out;
  for (CompatReason& reason : JudgeOnce(device, dest, footers)) {
    const bool seen = std::any_of(out.begin(), out.end(), [&](const CompatReason& r) {
      return r.code == reason.code && r.message == reason.message;
    });
    if (!seen) out.push_back(std::move(reason));
  }
  return out;
}

std::vector<CompatReason> JudgeOnce(const CompatSourceDevice& device, const DumpVmsd& dest,
                                    bool footers) {
  Context ctx;
  ctx.footers = footers;
  if (device.version > dest.version_id) {
    ctx.reasons.push_back(
        {"version.too_new", CompatStatus::kFails,
         absl::StrCat("version ", device.version, " is newer than the destination's ",
                      Quote(dest.name), " accepts (",
                      Bounds(dest.minimum_version_id, dest.version_id), ")")});
    return ctx.reasons;
  }
  if (device.version < dest.minimum_version_id) {
    ctx.reasons.push_back(
        {"version.too_old", CompatStatus::kFails,
         absl::StrCat("version ", device.version, " is older than the destination's ",
                      Quote(dest.name), " accepts (",
                      Bounds(dest.minimum_version_id, dest.version_id), ")")});
    return ctx.reasons;
  }
  if (device.sent != nullptr) {
    JudgeBody(CompareSentBody(device.sent->vmsd, dest, device.version, "", ctx, 0), "", ctx);
    CheckSentSubsections(device.sent->vmsd, dest, "", ctx, 0);
  } else if (device.declared != nullptr) {
    JudgeDeclaredBody(
        CompareDeclaredBody(*device.declared, device.version, dest, device.version, "", ctx, 0), "",
        ctx);
    CheckDeclaredSubsections(*device.declared, dest, "", ctx, 0);
  }
  return ctx.reasons;
}

// Whether a stream's description names the fields the destination's vmsd
// loads at `version`, in order (fields an exists() callback decides may be
// missing).
bool SameFieldNames(const VmsdDescription& sent, uint32_t version, const DumpVmsd& dest) {
  const std::vector<SentField> fields = GatherSent(sent.fields);
  size_t i = 0;
  for (const DumpField& df : dest.fields) {
    if (df.version_id > version) continue;
    if (i < fields.size() && fields[i].name == df.name) {
      ++i;
    } else if (!df.conditional) {
      return false;
    }
  }
  return i == fields.size();
}

// The destination types a source device is compared with: by vmsd name,
// since a section is named after its vmsd; a source dump's own type first
// among them.
std::vector<const DumpDevice*> Candidates(const CompatSourceDevice& device, const VmstateDump& dump,
                                          std::string* vmsd_name) {
  std::vector<std::string> names;
  if (device.declared != nullptr) {
    names.push_back(device.declared->name);
  } else if (device.sent != nullptr && !device.sent->legacy) {
    names.push_back(device.sent->vmsd.vmsd_name);
  } else {
    names = VmsdNameCandidates(device.name);
  }
  for (const std::string& name : names) {
    std::vector<const DumpDevice*> found = dump.FindVmsd(name);
    if (found.empty()) continue;
    *vmsd_name = name;
    // Types that share a vmsd name do not always share the vmsd (ne2k_isa
    // and ne2k_pci). The destination runs the source's device: a dump
    // source names its type; a stream's description shows its fields.
    std::vector<const DumpDevice*> narrowed;
    for (const DumpDevice* d : found) {
      if (device.declared != nullptr
              ? d->type == device.name
              : device.sent != nullptr &&
                    SameFieldNames(device.sent->vmsd, device.version, d->vmsd)) {
        narrowed.push_back(d);
      }
    }
    return narrowed.empty() ? found : narrowed;
  }
  if (!names.empty()) *vmsd_name = names.front();
  return {};
}

DeviceVerdict JudgeDevice(const CompatSourceDevice& device, const CompatSource& source,
                          const CompatDestination& destination) {
  DeviceVerdict out;
  out.name = EscapeName(device.name);
  out.instance_id = device.instance_id;
  out.version = device.version;
  auto not_checked = [&out](std::string code, std::string message) {
    out.status = CompatStatus::kNotChecked;
    out.reasons.push_back({std::move(code), CompatStatus::kNotChecked, std::move(message)});
    return out;
  };
  if (device.iterative) {
    return not_checked("section.iterative",
                       "an iterative section, loaded by its own handler; -dump-vmstate does not "
                       "describe it");
  }
  if (device.sent != nullptr && device.sent->legacy) {
    return not_checked("section.legacy",
                       "a save_state device: its state is one opaque buffer, nothing to compare");
  }
  if (destination.dump == nullptr) {
    return not_checked("destination.unknown", "nothing is known of the destination's devices");
  }
  std::string vmsd_name;
  std::vector<const DumpDevice*> found = Candidates(device, *destination.dump, &vmsd_name);
  out.vmsd_name = EscapeName(vmsd_name);
  if (found.empty()) {
    if (source.kind == CompatSource::Kind::kDump) {
      out.status = CompatStatus::kFails;
      out.reasons.push_back({"section.unknown", CompatStatus::kFails,
                             absl::StrCat("the destination has no device with vmsd ",
                                          Quote(vmsd_name), ": a guest with a ", Quote(device.name),
                                          " does not load (Unknown savevm section)")});
      return out;
    }
    return not_checked(
        "section.not_described",
        absl::StrCat("the destination's -dump-vmstate lists no vmsd ", Quote(vmsd_name),
                     " (it lists only device classes' own state; cpu, timer, ram and the like "
                     "are registered otherwise)"));
  }
  for (const DumpDevice* d : found) out.destination_types.push_back(EscapeName(d->type));
  out.destination_version = found.front()->vmsd.version_id;
  out.destination_minimum = found.front()->vmsd.minimum_version_id;

  // Device types sharing a vmsd name usually share the vmsd; when they judge
  // differently, which one the destination instantiates decides.
  std::vector<CompatReason> first = Judge(device, found.front()->vmsd, source.footers);
  const CompatStatus first_status = Worst(first, CompatStatus::kLoads);
  std::vector<std::string> disagree;
  for (size_t k = 1; k < found.size(); ++k) {
    std::vector<CompatReason> other = Judge(device, found[k]->vmsd, source.footers);
    const CompatStatus status = Worst(other, CompatStatus::kLoads);
    if (status != first_status) {
      disagree.push_back(absl::StrCat(Quote(found[k]->type), " ", CompatStatusName(status)));
    }
  }
  out.reasons = std::move(first);
  out.status = first_status;
  if (!disagree.empty()) {
    out.status = CompatStatus::kUnknown;
    out.reasons.insert(
        out.reasons.begin(),
        {"destination.ambiguous", CompatStatus::kUnknown,
         absl::StrCat("the destination's device types with vmsd ", Quote(vmsd_name),
                      " judge it differently (", Quote(found.front()->type), " ",
                      CompatStatusName(first_status), ", ", absl::StrJoin(disagree, ", "),
                      "): it depends on which one the destination has")});
  }
  return out;
}

void JudgeMachine(const CompatSource& source, const CompatDestination& destination,
                  CompatReport& report) {
  const std::string dest = Quote(destination.machine);
  if (destination.machine_missing) {
    report.machine_status = CompatStatus::kFails;
    report.machine_reasons.push_back({"machine.missing", CompatStatus::kFails,
                                      absl::StrCat("the destination has no machine ", dest)});
    return;
  }
  if (!source.machine.has_value()) {
    report.machine_status = CompatStatus::kNotChecked;
    report.machine_reasons.push_back(
        {"machine.not_sent", CompatStatus::kNotChecked,
         "the stream names no machine (no CONFIGURATION section): QEMU checks none"});
    return;
  }
  if (destination.machine.empty()) {
    report.machine_status = CompatStatus::kNotChecked;
    report.machine_reasons.push_back(
        {"machine.unknown", CompatStatus::kNotChecked, "the destination's machine is not known"});
    return;
  }
  if (*source.machine != destination.machine) {
    report.machine_status = CompatStatus::kFails;
    report.machine_reasons.push_back(
        {"machine.differs", CompatStatus::kFails,
         absl::StrCat(source.kind == CompatSource::Kind::kStream ? "the stream's machine is "
                                                                 : "the source runs machine ",
                      Quote(*source.machine), ", the destination runs ", dest,
                      " (Machine type received is ... and local is ...)")});
    return;
  }
  report.machine_status = CompatStatus::kLoads;
}

}  // namespace

absl::string_view CompatStatusName(CompatStatus status) {
  switch (status) {
    case CompatStatus::kLoads:
      return "loads";
    case CompatStatus::kFails:
      return "does_not_load";
    case CompatStatus::kUnknown:
      return "cannot_tell";
    case CompatStatus::kNotChecked:
      return "not_checked";
  }
  return "?";
}

std::vector<std::string> VmsdNameCandidates(absl::string_view idstr) {
  std::vector<std::string> out;
  if (idstr.empty()) return out;
  out.emplace_back(idstr);
  for (size_t slash = idstr.find('/'); slash != absl::string_view::npos;
       slash = idstr.find('/', slash + 1)) {
    if (slash + 1 < idstr.size()) out.emplace_back(idstr.substr(slash + 1));
  }
  return out;
}

size_t CompatReport::Count(CompatStatus status) const {
  return static_cast<size_t>(
      std::count_if(devices.begin(), devices.end(),
                    [status](const DeviceVerdict& d) { return d.status == status; }));
}

CompatStatus CompatReport::Overall() const {
  if (machine_status == CompatStatus::kFails || Count(CompatStatus::kFails) > 0) {
    return CompatStatus::kFails;
  }
  if (machine_status == CompatStatus::kUnknown || Count(CompatStatus::kUnknown) > 0) {
    return CompatStatus::kUnknown;
  }
  return CompatStatus::kLoads;
}

CompatReport CheckCompat(const CompatSource& source, const CompatDestination& destination) {
  CompatReport report;
  JudgeMachine(source, destination, report);
  report.devices.reserve(source.devices.size());
  for (const CompatSourceDevice& device : source.devices) {
    report.devices.push_back(JudgeDevice(device, source, destination));
  }
  return report;
}

}  // namespace qmig
