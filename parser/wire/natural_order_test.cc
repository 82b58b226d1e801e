#include "parser/wire/natural_order.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace qmig {
namespace {

TEST(NaturalOrderTest, DigitsCompareAsNumbers) {
  std::vector<std::string> names = {"mem10", "mem2", "a[10]", "a[2]", "a[1]", "mem1", "b"};
  std::sort(names.begin(), names.end(), NaturalOrder());
  EXPECT_EQ(names,
            (std::vector<std::string>{"a[1]", "a[2]", "a[10]", "b", "mem1", "mem2", "mem10"}));
}

TEST(NaturalOrderTest, LeadingZerosKeepNamesApart) {
  EXPECT_TRUE(NaturalLess("a1", "a01"));
  EXPECT_FALSE(NaturalLess("a01", "a1"));
  EXPECT_FALSE(NaturalLess("a1", "a1"));
  NameCounts counts = {{"a01", 1}, {"a1", 2}};
  EXPECT_EQ(counts.size(), 2u);
}

TEST(NaturalOrderTest, PrefixesAndBytes) {
  EXPECT_TRUE(NaturalLess("ram", "ram0"));
  EXPECT_FALSE(NaturalLess("ram0", "ram"));
  EXPECT_TRUE(NaturalLess("A", "a"));
  EXPECT_TRUE(NaturalLess("a", std::string("a\xff", 2)));
  // A run of 25 digits is larger than any shorter one, without overflow.
  EXPECT_TRUE(NaturalLess("x99", "x1000000000000000000000000"));
}

}  // namespace
}  // namespace qmig
