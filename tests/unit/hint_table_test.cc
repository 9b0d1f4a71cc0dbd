// The hint table (userspace/hints): what a writer stores a reader finds, a
// thread with no entry has no hints, a malformed or resizable table is
// refused in one message, and a reader never returns a half-written entry
// nor waits forever on one.
#include "userspace/hints/hint_table.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ghost {
namespace {

std::unique_ptr<HintWriter> NewTable(uint32_t entries = 8, uint32_t classes = 4) {
  absl::StatusOr<std::unique_ptr<HintWriter>> w =
      HintWriter::Create({.entries = entries, .classes = classes});
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? std::move(*w) : nullptr;
}

std::unique_ptr<HintReader> OpenReader(const HintWriter& w) {
  absl::StatusOr<std::unique_ptr<HintReader>> r = HintReader::Open(w.path());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

ghost_hint_header* Header(HintWriter& w) { return reinterpret_cast<ghost_hint_header*>(w.raw()); }

TEST(HintTableTest, WhatTheWriterStoresTheReaderFinds) {
  auto w = NewTable();
  auto r = OpenReader(*w);
  ASSERT_TRUE(w && r);
  EXPECT_EQ(r->entries(), 8u);
  EXPECT_EQ(r->classes(), 4u);
  ASSERT_TRUE(w->Add(100, {.qos = 3, .deadline_ns = 5000, .runtime_ns = 40, .cookie = 9}).ok());
  ASSERT_TRUE(w->Add(101, {.idle = true}).ok());
  std::optional<Hint> h = r->Find(100);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->qos, 3u);
  EXPECT_EQ(h->deadline_ns, 5000u);
  EXPECT_EQ(h->runtime_ns, 40u);
  EXPECT_EQ(h->cookie, 9u);
  EXPECT_FALSE(h->idle);
  EXPECT_FALSE(h->class_id.has_value());
  h = r->Find(101);
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->idle);
  EXPECT_FALSE(h->qos.has_value());  // unset stays unset: the policy's default applies

  ASSERT_TRUE(w->Update(100, {.qos = 7}).ok());
  h = r->Find(100);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->qos, 7u);
  EXPECT_FALSE(h->deadline_ns.has_value());
}

TEST(HintTableTest, AThreadWithNoEntryHasNoHints) {
  auto w = NewTable();
  auto r = OpenReader(*w);
  ASSERT_TRUE(w && r);
  EXPECT_FALSE(r->Find(100).has_value());
  EXPECT_FALSE(r->Find(0).has_value());
  EXPECT_FALSE(r->Find(-5).has_value());
  ASSERT_TRUE(w->Add(100, {.qos = 1}).ok());
  EXPECT_TRUE(r->Find(100).has_value());
  ASSERT_TRUE(w->Remove(100).ok());
  EXPECT_FALSE(r->Find(100).has_value());
  EXPECT_EQ(r->stats().found, 1u);
}

TEST(HintTableTest, TheClassFillsInWhatTheEntryLeavesUnset) {
  auto w = NewTable();
  auto r = OpenReader(*w);
  ASSERT_TRUE(w && r);
  ASSERT_TRUE(w->SetClass(2, {.qos = 5, .relative_deadline_ns = 100000, .runtime_ns = 4000}).ok());
  ASSERT_TRUE(w->Add(200, {.runtime_ns = 10, .class_id = 2}).ok());
  std::optional<Hint> h = r->Find(200);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->class_id, 2u);
  EXPECT_EQ(h->qos, 5u);                        // from the class
  EXPECT_EQ(h->runtime_ns, 10u);                // the entry's own wins
  EXPECT_EQ(h->relative_deadline_ns, 100000u);  // the class's, relative
  EXPECT_FALSE(h->deadline_ns.has_value());
  EXPECT_FALSE(h->cookie.has_value());
}

TEST(HintTableTest, TheWriterRefusesBadInput) {
  EXPECT_FALSE(HintWriter::Create({.entries = 0}).ok());
  EXPECT_FALSE(HintWriter::Create({.entries = GHOST_HINT_MAX_ENTRIES + 1}).ok());
  EXPECT_FALSE(HintWriter::Create({.classes = GHOST_HINT_MAX_CLASSES + 1}).ok());
  auto w = NewTable(/*entries=*/2, /*classes=*/1);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Add(0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w->Add(5, {.class_id = 1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w->Add(5, {.relative_deadline_ns = 3}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w->SetClass(1, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w->SetClass(0, {.deadline_ns = 3}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w->Update(5, {}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w->Remove(5).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(w->Add(5, {}).ok());
  EXPECT_EQ(w->Add(5, {}).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(w->Add(6, {}).ok());
  absl::StatusOr<uint32_t> full = w->Add(7, {});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.status().message(), "hint table full: all 2 entries in use");
  ASSERT_TRUE(w->Remove(5).ok());
  EXPECT_TRUE(w->Add(7, {}).ok());  // the freed entry is reused
}

TEST(HintTableTest, AReusedEntryIsFoundUnderItsNewThread) {
  auto w = NewTable(/*entries=*/1, /*classes=*/0);
  auto r = OpenReader(*w);
  ASSERT_TRUE(w && r);
  ASSERT_TRUE(w->Add(300, {.qos = 1}).ok());
  ASSERT_TRUE(r->Find(300).has_value());
  ASSERT_TRUE(w->Remove(300).ok());
  ASSERT_TRUE(w->Add(301, {.qos = 2}).ok());
  EXPECT_FALSE(r->Find(300).has_value());
  std::optional<Hint> h = r->Find(301);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->qos, 2u);
  // The writer moved the entry to another thread without a generation bump
  // (an application's own writer may): the stale index is noticed.
  auto* e = reinterpret_cast<ghost_hint_entry*>(w->raw() + Header(*w)->entries_offset);
  e->tid = 302;
  EXPECT_FALSE(r->Find(301).has_value());
  EXPECT_TRUE(r->Find(302).has_value());
}

// Entries the application corrupts cost the agent nothing but the hint.
TEST(HintTableTest, BadEntriesAreCountedNotTrusted) {
  auto w = NewTable(/*entries=*/4, /*classes=*/2);
  auto r = OpenReader(*w);
  ASSERT_TRUE(w && r);
  ASSERT_TRUE(w->Add(400, {.qos = 1, .class_id = 1}).ok());
  auto* e = reinterpret_cast<ghost_hint_entry*>(w->raw() + Header(*w)->entries_offset);
  e->class_id = 77;  // no such class
  std::optional<Hint> h = r->Find(400);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->qos, 1u);
  EXPECT_FALSE(h->class_id.has_value());
  EXPECT_EQ(r->stats().bad_class_ids, 1u);
  // A writer that died mid-update leaves the count odd: the reader gives up
  // after kMaxTries (it does not spin) and the thread has no hints.
  e->seq = 1;
  EXPECT_FALSE(r->Find(400).has_value());
  EXPECT_EQ(r->stats().torn, 1u);
}

// Torn reads: a writer keeps rewriting one entry with fields that agree
// with each other; readers must only ever see agreeing fields. The writer
// pauses a little after each update, as a real one does (one that never
// stops keeps the count odd half the time, and under ASan on a loaded host
// readers then gave up on every try), and runs at least 300 ms and until the
// readers made 1000 consistent reads (at most 10 s).
TEST(HintTableTest, ReadersNeverSeeAHalfWrittenEntry) {
  auto w = NewTable(/*entries=*/2, /*classes=*/0);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Add(500, {.qos = 0, .deadline_ns = 0, .runtime_ns = 0, .cookie = ~0ULL}).ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> seen{0}, torn{0}, missed{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&] {
      auto r = OpenReader(*w);
      if (!r) return;
      while (!stop.load(std::memory_order_relaxed)) {
        std::optional<Hint> h = r->Find(500);
        if (!h) {
          missed.fetch_add(1);
          continue;
        }
        const uint64_t v = h->deadline_ns.value_or(~0ULL);
        if (h->qos != static_cast<uint32_t>(v) || h->runtime_ns != v * 3 || h->cookie != ~v) {
          torn.fetch_add(1);
        }
        seen.fetch_add(1);
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t v = 0;
  for (;;) {
    ++v;
    ASSERT_TRUE(w->Update(500, {.qos = static_cast<uint32_t>(v), .deadline_ns = v,
                                .runtime_ns = v * 3, .cookie = ~v})
                    .ok());
    for (int spin = 0; spin < 50; ++spin) __asm__ __volatile__("" ::: "memory");
    if (v % 256 != 0) continue;
    std::this_thread::yield();
    const auto ran = std::chrono::steady_clock::now() - start;
    if ((ran > std::chrono::milliseconds(300) && seen.load() >= 1000) ||
        ran > std::chrono::seconds(10)) {
      break;
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0u) << "of " << seen.load() << " reads";
  EXPECT_GE(seen.load(), 1000u);
  EXPECT_GT(v, 1000u);
  std::printf("  %llu updates, %llu consistent reads, %llu given up\n",
              static_cast<unsigned long long>(v), static_cast<unsigned long long>(seen.load()),
              static_cast<unsigned long long>(missed.load()));
}

// A table's header is the application's to write: every field is checked
// against the table's size before anything is read through it.
TEST(HintTableTest, MalformedHeadersAreRefusedInOneMessage) {
  const ghost_hint_header good = {
      .magic = GHOST_HINT_MAGIC,
      .version_major = GHOST_HINT_VERSION_MAJOR,
      .version_minor = 3,  // a later minor version is fine
      .header_bytes = sizeof(ghost_hint_header),
      .class_bytes = sizeof(ghost_hint_class),
      .entry_bytes = sizeof(ghost_hint_entry),
      .nr_classes = 2,
      .nr_entries = 4,
      .classes_offset = 64,
      .entries_offset = 64 + 2 * 64,
  };
  const uint64_t bytes = 64 + 2 * 64 + 4 * 64;
  EXPECT_TRUE(ValidateHintHeader(good, bytes).ok()) << ValidateHintHeader(good, bytes);
  struct Case {
    const char* what;
    void (*mutate)(ghost_hint_header&);
    const char* message;
  };
  const Case cases[] = {
      {"magic 0", [](ghost_hint_header& h) { h.magic = 0; }, "not initialised"},
      {"magic", [](ghost_hint_header& h) { h.magic = 0x12345678; }, "bad magic 0x12345678"},
      {"major", [](ghost_hint_header& h) { h.version_major = 2; }, "layout version 2.3"},
      {"header", [](ghost_hint_header& h) { h.header_bytes = 8; }, "header of 8 bytes"},
      {"header big", [](ghost_hint_header& h) { h.header_bytes = 1 << 20; }, "header of"},
      {"entry size", [](ghost_hint_header& h) { h.entry_bytes = 60; }, "entries of 60 bytes"},
      {"class size", [](ghost_hint_header& h) { h.class_bytes = 1 << 16; }, "classes of 65536"},
      {"no entries", [](ghost_hint_header& h) { h.nr_entries = 0; }, "0 entries"},
      {"too many", [](ghost_hint_header& h) { h.nr_entries = GHOST_HINT_MAX_ENTRIES + 1; },
       "entries: want 1.."},
      {"classes", [](ghost_hint_header& h) { h.nr_classes = GHOST_HINT_MAX_CLASSES + 1; },
       "classes: want at most"},
      {"past the end", [](ghost_hint_header& h) { h.nr_entries = 5; }, "past the table's"},
      {"huge count", [](ghost_hint_header& h) { h.entries_offset = 0xfffffff8; },
       "past the table's"},
      {"in the header", [](ghost_hint_header& h) { h.entries_offset = 8; }, "after the 64-byte"},
      {"unaligned", [](ghost_hint_header& h) { h.classes_offset = 65; }, "multiple of 8"},
      {"overlap", [](ghost_hint_header& h) { h.entries_offset = 128; }, "overlap"},
  };
  for (const Case& c : cases) {
    ghost_hint_header h = good;
    c.mutate(h);
    absl::Status s = ValidateHintHeader(h, bytes);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.what << ": " << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << c.what;
  }
}

TEST(HintTableTest, OnlyASealedTableIsOpened) {
  EXPECT_EQ(HintReader::Open("/no/such/table").status().code(), absl::StatusCode::kNotFound);
  // A plain file with a valid table in it: it could be truncated under the
  // reader's mapping, so it is refused.
  auto w = NewTable();
  ASSERT_TRUE(w);
  char path[] = "/tmp/ghost-hints-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, w->raw(), w->raw_bytes()), static_cast<ssize_t>(w->raw_bytes()));
  close(fd);
  absl::StatusOr<std::unique_ptr<HintReader>> r = HintReader::Open(path);
  unlink(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not a sealed memfd"), std::string::npos) << r.status();
  // A sealed memfd that is too small for its header, and one whose header
  // is bad: refused with the path in the message.
  const int small = memfd_create("small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(small, 0);
  ASSERT_EQ(ftruncate(small, 16), 0);
  ASSERT_EQ(fcntl(small, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  const std::string small_path = "/proc/self/fd/" + std::to_string(small);
  r = HintReader::Open(small_path);
  EXPECT_NE(r.status().message().find("smaller than the header"), std::string::npos) << r.status();
  close(small);
  Header(*w)->entry_bytes = 8;
  r = HintReader::Open(w->path());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(w->path()), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("entries of 8 bytes"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace ghost
