// DecodeVmstate: device bodies decoded strictly against their description.
#include "parser/vmstate/interpreter.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/parse_context.h"
#include "parser/encode/stream_writer.h"
#include "parser/vmstate/description.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

struct Visit {
  std::string path;
  std::string type;
  uint64_t offset;
  uint64_t size;
  std::vector<uint8_t> bytes;
};

class Recorder : public VmstateFieldVisitor {
 public:
  void OnField(const VmstateFieldView& field) override {
    visits.push_back({std::string(field.path), std::string(field.type), field.offset, field.size,
                      std::vector<uint8_t>(field.bytes.begin(), field.bytes.end())});
  }
  std::vector<Visit> visits;
};

// Decodes `body` (placed at absolute offset `base`) with `vmsd`.
struct Decoded {
  absl::Status status;
  FindingList findings;
  Recorder recorder;
  VmstateDecodeStats stats;
  uint64_t end = 0;
};

std::unique_ptr<Decoded> Decode(const VmsdDescription& vmsd, const std::vector<uint8_t>& body,
                                uint64_t base = 0x100) {
  auto out = std::make_unique<Decoded>();
  MemorySource source(body, base);
  ParseContext context(&out->findings);
  PathScope scope(context, "FULL 'dev' #0");
  Reader reader(&source, &context, base);
  out->status = DecodeVmstate(reader, vmsd, context, &out->recorder, &out->stats);
  out->end = reader.offset();
  return out;
}

VmstateField F(std::string name, std::string type, uint64_t size, uint64_t array_len = 0) {
  VmstateField field;
  field.name = std::move(name);
  field.type = std::move(type);
  field.size = size;
  field.array_len = array_len;
  return field;
}

VmstateField Struct(std::string name, uint64_t size, VmsdDescription sub) {
  VmstateField field = F(std::move(name), "struct", size);
  field.sub = std::make_shared<VmsdDescription>(std::move(sub));
  return field;
}

VmsdDescription Vmsd(std::string name, uint32_t version, std::vector<VmstateField> fields,
                     std::vector<VmsdDescription> subsections = {}) {
  VmsdDescription vmsd;
  vmsd.vmsd_name = std::move(name);
  vmsd.version = version;
  vmsd.fields = std::move(fields);
  vmsd.subsections = std::move(subsections);
  return vmsd;
}

const Finding* Only(const Decoded& d, FindingCode code) {
  const Finding* found = nullptr;
  int count = 0;
  for (const Finding& f : d.findings.findings()) {
    if (f.code == code) {
      found = &f;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << DescribeFinding(code).name;
  return found;
}

TEST(InterpreterTest, FieldsInOrderWithPathsAndOffsets) {
  auto d = Decode(Vmsd("dev", 1, {F("a", "uint32", 4), F("b", "uint8", 1), F("c", "buffer", 3)}),
                  {0, 0, 0, 7, 9, 1, 2, 3});
  ASSERT_TRUE(d->status.ok()) << d->status;
  EXPECT_TRUE(d->findings.findings().empty());
  EXPECT_EQ(d->end, 0x108u);
  EXPECT_EQ(d->stats.fields, 3u);
  ASSERT_EQ(d->recorder.visits.size(), 3u);
  EXPECT_EQ(d->recorder.visits[0].path, "a");
  EXPECT_EQ(d->recorder.visits[0].offset, 0x100u);
  EXPECT_EQ(d->recorder.visits[0].bytes, (std::vector<uint8_t>{0, 0, 0, 7}));
  EXPECT_EQ(d->recorder.visits[1].path, "b");
  EXPECT_EQ(d->recorder.visits[1].offset, 0x104u);
  EXPECT_EQ(d->recorder.visits[2].type, "buffer");
  EXPECT_EQ(d->recorder.visits[2].offset, 0x105u);
}

TEST(InterpreterTest, CompressedArrayRepeatsTheElement) {
  auto d = Decode(Vmsd("dev", 1, {F("arr", "uint16", 2, 3)}), {0, 1, 0, 2, 0, 3});
  ASSERT_TRUE(d->status.ok()) << d->status;
  EXPECT_EQ(d->end, 0x106u);
  ASSERT_EQ(d->recorder.visits.size(), 3u);
  EXPECT_EQ(d->recorder.visits[0].path, "arr[0]");
  EXPECT_EQ(d->recorder.visits[2].path, "arr[2]");
  EXPECT_EQ(d->recorder.visits[2].offset, 0x104u);
}

TEST(InterpreterTest, StructOfTheDescribedSize) {
  VmsdDescription seg = Vmsd("segment", 1, {F("sel", "uint16", 2), F("base", "uint32", 4)});
  auto d = Decode(Vmsd("dev", 1, {Struct("s", 6, seg), F("z", "uint8", 1)}),
                  {0, 1, 0, 0, 0, 2, 9});
  ASSERT_TRUE(d->status.ok()) << d->status;
  ASSERT_EQ(d->recorder.visits.size(), 3u);
  EXPECT_EQ(d->recorder.visits[0].path, "s.sel");
  EXPECT_EQ(d->recorder.visits[1].path, "s.base");
  EXPECT_EQ(d->recorder.visits[2].path, "z");
}

TEST(InterpreterTest, StructWhoseFieldsDoNotAddUpToItsSize) {
  VmsdDescription seg = Vmsd("segment", 1, {F("sel", "uint16", 2), F("base", "uint32", 4)});
  auto d = Decode(Vmsd("dev", 1, {Struct("s", 7, seg)}), std::vector<uint8_t>(8, 0));
  EXPECT_FALSE(d->status.ok());
  const Finding* f = Only(*d, FindingCode::kDeviceLength);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x100u);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_EQ(f->path, "FULL 'dev' #0 > s");
}

TEST(InterpreterTest, ArrayOfStructs) {
  VmsdDescription pair = Vmsd("pair", 1, {F("x", "uint8", 1), F("y", "uint8", 1)});
  VmstateField field = Struct("p", 2, pair);
  field.array_len = 2;
  auto d = Decode(Vmsd("dev", 1, {field}), {1, 2, 3, 4});
  ASSERT_TRUE(d->status.ok()) << d->status;
  ASSERT_EQ(d->recorder.visits.size(), 4u);
  EXPECT_EQ(d->recorder.visits[3].path, "p[1].y");
  EXPECT_EQ(d->recorder.visits[3].bytes, std::vector<uint8_t>{4});
}

// A subsection on the wire: 0x05, counted name, be32 version, body.
std::vector<uint8_t> SubsectionBytes(const std::string& name, uint32_t version,
                                     const std::vector<uint8_t>& body) {
  StreamWriter w;
  w.Subsection(name, version).Bytes(body);
  return w.Take();
}

std::vector<uint8_t> Concat(std::vector<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

VmsdDescription WithTwoSubsections() {
  return Vmsd("dev", 1, {F("a", "uint8", 1)},
              {Vmsd("dev/one", 1, {F("x", "uint16", 2)}), Vmsd("dev/two", 3, {F("y", "uint8", 1)})});
}

TEST(InterpreterTest, SubsectionsInOrder) {
  auto d = Decode(WithTwoSubsections(),
                  Concat({{7}, SubsectionBytes("dev/one", 1, {0, 5}), SubsectionBytes("dev/two", 3, {6})}));
  ASSERT_TRUE(d->status.ok()) << d->status;
  EXPECT_TRUE(d->findings.findings().empty());
  EXPECT_EQ(d->stats.subsections, 2u);
  ASSERT_EQ(d->recorder.visits.size(), 3u);
  EXPECT_EQ(d->recorder.visits[1].path, "/dev/one.x");
  EXPECT_EQ(d->recorder.visits[2].path, "/dev/two.y");
}

TEST(InterpreterTest, SubsectionsOutOfOrder) {
  std::vector<uint8_t> body =
      Concat({{7}, SubsectionBytes("dev/two", 3, {6}), SubsectionBytes("dev/one", 1, {0, 5})});
  auto d = Decode(WithTwoSubsections(), body);
  EXPECT_FALSE(d->status.ok());
  const Finding* f = Only(*d, FindingCode::kDeviceSubsection);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x101u);
  EXPECT_EQ(f->path, "FULL 'dev' #0 > /dev/one");
}

TEST(InterpreterTest, MissingSubsection) {
  auto d = Decode(WithTwoSubsections(), Concat({{7}, SubsectionBytes("dev/one", 1, {0, 5}), {0}}));
  EXPECT_FALSE(d->status.ok());
  const Finding* f = Only(*d, FindingCode::kDeviceSubsection);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x101u + 1 + 1 + 7 + 4 + 2);
  EXPECT_EQ(f->path, "FULL 'dev' #0 > /dev/two");
}

TEST(InterpreterTest, SubsectionVersionDiffers) {
  auto d = Decode(WithTwoSubsections(),
                  Concat({{7}, SubsectionBytes("dev/one", 2, {0, 5}), SubsectionBytes("dev/two", 3, {6})}));
  ASSERT_TRUE(d->status.ok()) << d->status;
  const Finding* f = Only(*d, FindingCode::kDeviceVersion);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x101u);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_EQ(f->path, "FULL 'dev' #0 > /dev/one");
}

TEST(InterpreterTest, NestedSubsectionPath) {
  VmsdDescription vmsd = Vmsd("dev", 1, {}, {Vmsd("dev/a", 1, {}, {Vmsd("dev/a/b", 1, {F("q", "uint8", 1)})})});
  auto d = Decode(vmsd, Concat({SubsectionBytes("dev/a", 1, {}), SubsectionBytes("dev/a/b", 1, {4})}));
  ASSERT_TRUE(d->status.ok()) << d->status;
  ASSERT_EQ(d->recorder.visits.size(), 1u);
  EXPECT_EQ(d->recorder.visits[0].path, "/dev/a/dev/a/b.q");
}

TEST(InterpreterTest, NullPointerMarker) {
  VmsdDescription vmsd = Vmsd("dev", 1, {F("p", "nullptr", 1)});
  auto good = Decode(vmsd, {0x30});
  ASSERT_TRUE(good->status.ok());
  EXPECT_TRUE(good->findings.findings().empty());
  auto bad = Decode(vmsd, {0x31});
  ASSERT_TRUE(bad->status.ok());
  const Finding* f = Only(*bad, FindingCode::kDeviceValue);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x100u);
  EXPECT_FALSE(f->qemu_accepts);
  EXPECT_EQ(f->path, "FULL 'dev' #0 > p");
}

TEST(InterpreterTest, BoolAboveOneQemuAccepts) {
  VmsdDescription vmsd = Vmsd("dev", 1, {F("pad", "uint8", 1), F("b", "bool", 1)});
  EXPECT_TRUE(Decode(vmsd, {0, 1})->findings.findings().empty());
  auto d = Decode(vmsd, {0, 2});
  ASSERT_TRUE(d->status.ok());
  const Finding* f = Only(*d, FindingCode::kDeviceValue);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x101u);
  EXPECT_TRUE(f->qemu_accepts);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_EQ(f->path, "FULL 'dev' #0 > b");
}

TEST(InterpreterTest, TypeWidthDisagreesWithSize) {
  auto d = Decode(Vmsd("dev", 1, {F("a", "uint32", 2)}), {0, 0, 0, 0});
  EXPECT_FALSE(d->status.ok());
  const Finding* f = Only(*d, FindingCode::kSchemaInvalid);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x100u);
}

TEST(InterpreterTest, BodyShorterThanTheDescription) {
  auto d = Decode(Vmsd("dev", 1, {F("a", "uint32", 4), F("b", "uint64", 8)}), {0, 0, 0, 1, 0, 0});
  EXPECT_FALSE(d->status.ok());
  const Finding* f = Only(*d, FindingCode::kTruncated);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 0x106u);  // where the input ends
}

TEST(InterpreterTest, LargeFieldIsSkippedInChunks) {
  const uint64_t size = kMaxContiguousView + 10;
  auto d = Decode(Vmsd("dev", 1, {F("ram", "buffer", size), F("t", "uint8", 1)}),
                  std::vector<uint8_t>(size + 1, 0));
  ASSERT_TRUE(d->status.ok()) << d->status;
  ASSERT_EQ(d->recorder.visits.size(), 2u);
  EXPECT_EQ(d->recorder.visits[0].size, size);
  EXPECT_TRUE(d->recorder.visits[0].bytes.empty());
  EXPECT_EQ(d->recorder.visits[1].offset, 0x100u + size);
}

TEST(InterpreterTest, NestingDeeperThanTheLimit) {
  auto nest = [](size_t levels) {
    VmsdDescription vmsd = Vmsd("leaf", 1, {F("x", "uint8", 1)});
    for (size_t i = 0; i < levels; ++i) vmsd = Vmsd("n", 1, {Struct("s", 1, vmsd)});
    return vmsd;
  };
  auto ok = Decode(nest(kMaxVmstateDepth), {1});
  EXPECT_TRUE(ok->status.ok()) << ok->status;
  auto deep = Decode(nest(kMaxVmstateDepth + 1), {1});
  EXPECT_FALSE(deep->status.ok());
  EXPECT_NE(Only(*deep, FindingCode::kSchemaInvalid), nullptr);
}

TEST(InterpreterTest, FixedWidths) {
  EXPECT_EQ(FixedWidthOfType("bool"), 1u);
  EXPECT_EQ(FixedWidthOfType("uint16 equal"), 2u);
  EXPECT_EQ(FixedWidthOfType("int32 le"), 4u);
  EXPECT_EQ(FixedWidthOfType("timer"), 8u);
  EXPECT_EQ(FixedWidthOfType("CPU_Double_U"), 8u);
  EXPECT_EQ(FixedWidthOfType("buffer"), 0u);
}

}  // namespace
}  // namespace qmig
