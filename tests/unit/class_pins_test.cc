#include "userspace/class_pins.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "userspace/bpf_class.h"

namespace ghost {
namespace {

TEST(ClassPinsTest, PathsLiveUnderTheDirectory) {
  ClassPins pins = {.dir = "/sys/fs/bpf/ghost"};
  EXPECT_EQ(pins.Link(), "/sys/fs/bpf/ghost/link");
  EXPECT_EQ(pins.Enroll(), "/sys/fs/bpf/ghost/enroll");
  EXPECT_EQ(pins.MapsDir(), "/sys/fs/bpf/ghost/maps");
  EXPECT_EQ(pins.Map("status_words"), "/sys/fs/bpf/ghost/maps/status_words");
}

TEST(ClassPinsTest, GlobalDataMapsLoseTheObjectPrefix) {
  EXPECT_EQ(PinName("ghost_bp.bss"), "bss");
  EXPECT_EQ(PinName("ghost.rodata"), "rodata");
  EXPECT_EQ(PinName("other_ob.data"), "data");
  EXPECT_EQ(PinName("task_ctx"), "task_ctx");
  ClassPins pins = {.dir = "/p"};
  EXPECT_EQ(pins.Map("ghost_bp.bss"), "/p/maps/bss");
}

TEST(ClassPinsTest, NothingPinnedMeansLoad) {
  EXPECT_EQ(Classify({.link_pinned = false, .link_live = false, .state = "disabled"}),
            ClassFound::kNone);
  // Someone else's class without our pins: loading reports it (attach fails).
  EXPECT_EQ(Classify({.link_pinned = false, .state = "enabled", .ops = "simple"}),
            ClassFound::kNone);
}

TEST(ClassPinsTest, ALiveGhostLinkIsReattached) {
  EXPECT_EQ(Classify({.link_pinned = true, .link_live = true, .state = "enabled", .ops = "ghost"}),
            ClassFound::kPinned);
}

TEST(ClassPinsTest, PinsOfAClassThatIsGoneAreStale) {
  // Detached link (a clean exit cut short).
  EXPECT_EQ(Classify({.link_pinned = true, .link_live = false, .state = "enabled", .ops = "ghost"}),
            ClassFound::kStale);
  // Ejected by the kernel: the link still names its map, the class is off.
  EXPECT_EQ(Classify({.link_pinned = true, .link_live = true, .state = "disabled", .ops = ""}),
            ClassFound::kStale);
  // Another scheduler runs now.
  EXPECT_EQ(Classify({.link_pinned = true, .link_live = true, .state = "enabled", .ops = "simple"}),
            ClassFound::kStale);
}

TEST(ClassPinsTest, AbiCheckNamesBothVersions) {
  EXPECT_TRUE(CheckClassAbi(3, 3).ok());
  absl::Status s = CheckClassAbi(2, 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("ABI version 2"), absl::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("ABI version 3"), absl::string_view::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), absl::string_view::npos);
}

// What a class that is gone left behind (any files: RemoveStalePins only
// unlinks) is removed, directory included; what is not ours is not.
TEST(ClassPinsTest, StalePinsAreRemoved) {
  char tmpl[] = "/tmp/class_pins_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  ClassPins pins = {.dir = std::string(tmpl) + "/ghost"};
  ASSERT_EQ(mkdir(pins.dir.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(pins.MapsDir().c_str(), 0755), 0);
  for (const std::string& f : {pins.Link(), pins.Enroll(), pins.Map("status_words"),
                               pins.Map("ghost_bp.bss")}) {
    int fd = open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << f;
    close(fd);
  }
  BpfClass::RemoveStalePins(pins);
  EXPECT_NE(access(pins.dir.c_str(), F_OK), 0);
  EXPECT_EQ(access(tmpl, F_OK), 0);
  rmdir(tmpl);
}

TEST(ClassPinsTest, OnlyADirectoryOfOursNoOneElseWritesHoldsPins) {
  char tmpl[] = "/tmp/class_pins_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  EXPECT_TRUE(CheckPinDir(dir).ok());  // mkdtemp: 0700, ours
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  EXPECT_TRUE(CheckPinDir(dir).ok());  // others may look, not write
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  absl::Status s = CheckPinDir(dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(s.message().find('\n'), absl::string_view::npos);
  ASSERT_EQ(chmod(dir.c_str(), 01777), 0);  // like bpffs's root
  EXPECT_FALSE(CheckPinDir(dir).ok());
  std::string link = dir + ".link";
  ASSERT_EQ(symlink(dir.c_str(), link.c_str()), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  EXPECT_FALSE(CheckPinDir(link).ok());  // a symlink is never followed
  EXPECT_FALSE(CheckPinDir(dir + "/missing").ok());
  unlink(link.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace ghost
