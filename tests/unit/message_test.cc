#include "userspace/message.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace ghost {
namespace {

ghost_msg MakeMsg(uint16_t type) {
  ghost_msg m = {};
  m.type = type;
  m.size = sizeof(ghost_msg);
  m.cpu = 3;
  m.tid = 42;
  m.seqnum = 7;
  m.time_ns = 1234;
  return m;
}

TEST(MessageTest, DecodesAGoodRecord) {
  ghost_msg raw = MakeMsg(GHOST_MSG_TASK_NEW);
  raw.task_new.sw_index = 9;
  absl::StatusOr<Message> m = Message::Decode(&raw, sizeof(raw));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->type(), GHOST_MSG_TASK_NEW);
  EXPECT_TRUE(m->is_task());
  EXPECT_FALSE(m->is_cpu());
  EXPECT_EQ(m->tid(), 42u);
  EXPECT_EQ(m->seqnum(), 7u);
  EXPECT_EQ(m->cpu(), 3);
  EXPECT_EQ(m->time_ns(), 1234u);
  EXPECT_EQ(m->raw().task_new.sw_index, 9u);
  EXPECT_EQ(m->ToString(), "TASK_NEW tid=42 seq=7 cpu=3");
}

TEST(MessageTest, DecodesCpuMessages) {
  ghost_msg raw = MakeMsg(GHOST_MSG_CPU_BUSY);
  absl::StatusOr<Message> m = Message::Decode(&raw, sizeof(raw));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->is_cpu());
  EXPECT_FALSE(m->is_task());
  EXPECT_EQ(m->ToString(), "CPU_BUSY cpu=3 seq=7");
}

TEST(MessageTest, AcceptsLongerRecordsFromNewerKernels) {
  std::vector<unsigned char> buf(sizeof(ghost_msg) + 16, 0xab);
  ghost_msg raw = MakeMsg(GHOST_MSG_TASK_WAKEUP);
  raw.size = static_cast<__u16>(buf.size());
  std::memcpy(buf.data(), &raw, sizeof(raw));
  absl::StatusOr<Message> m = Message::Decode(buf.data(), buf.size());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->type(), GHOST_MSG_TASK_WAKEUP);
}

TEST(MessageTest, RejectsShortRecord) {
  ghost_msg raw = MakeMsg(GHOST_MSG_TASK_WAKEUP);
  absl::StatusOr<Message> m = Message::Decode(&raw, sizeof(raw) - 1);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message::Decode(nullptr, sizeof(raw)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The size field must cover our layout and lie within the record.
  raw.size = sizeof(ghost_msg) - 8;
  EXPECT_EQ(Message::Decode(&raw, sizeof(raw)).status().code(),
            absl::StatusCode::kInvalidArgument);
  raw.size = sizeof(ghost_msg) + 8;
  EXPECT_EQ(Message::Decode(&raw, sizeof(raw)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MessageTest, RejectsUnknownType) {
  for (uint16_t type : {0, 11, 63, 69, 1000}) {
    ghost_msg raw = MakeMsg(type);
    absl::StatusOr<Message> m = Message::Decode(&raw, sizeof(raw));
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << type;
  }
}

TEST(MessageTest, NamesEveryType) {
  EXPECT_STREQ(MessageTypeName(GHOST_MSG_TASK_NEW), "TASK_NEW");
  EXPECT_STREQ(MessageTypeName(GHOST_MSG_TASK_ON_CPU), "TASK_ON_CPU");
  EXPECT_STREQ(MessageTypeName(GHOST_MSG_CPU_TIMER_EXPIRED), "CPU_TIMER_EXPIRED");
  EXPECT_STREQ(MessageTypeName(500), "UNKNOWN");
  for (uint16_t t = 0; t < 200; ++t) {
    EXPECT_EQ(IsKnownMessageType(t), std::string(MessageTypeName(t)) != "UNKNOWN")
        << t;
  }
}

}  // namespace
}  // namespace ghost
