"""test_sources(): a package's *_test.cc files, for //tests:finding_codes_test,
which checks that every finding code is asserted by some test."""

def test_sources():
    native.filegroup(
        name = "test_sources",
        srcs = native.glob(["*_test.cc"]),
        visibility = ["//tests:__pkg__"],
    )
