#include "parser/wire/plural.h"

#include "gtest/gtest.h"

namespace qmig {
namespace {

TEST(CountedTest, SingularOnlyForOne) {
  EXPECT_EQ(Counted(0, "byte"), "0 bytes");
  EXPECT_EQ(Counted(1, "byte"), "1 byte");
  EXPECT_EQ(Counted(2, "page"), "2 pages");
  EXPECT_EQ(Counted(1, "entry", "entries"), "1 entry");
  EXPECT_EQ(Counted(3, "entry", "entries"), "3 entries");
}

}  // namespace
}  // namespace qmig
