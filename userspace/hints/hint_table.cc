#include "userspace/hints/hint_table.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ghost {
namespace {

constexpr uint32_t kHeaderBytes = sizeof(ghost_hint_header);
constexpr uint32_t kClassBytes = sizeof(ghost_hint_class);
constexpr uint32_t kEntryBytes = sizeof(ghost_hint_entry);
// Largest class or entry a reader accepts (a later minor version's).
constexpr uint32_t kMaxItemBytes = 4096;

// Classes and entries are read and written as words of shared memory, never
// as C++ objects: the first word is the sequence count (u32) and the flags
// (u32), then 64-bit words. A writer: count odd, fields, count even. A
// reader: the fields between two equal even counts.
uint32_t* SeqOf(char* item) { return reinterpret_cast<uint32_t*>(item); }
const uint32_t* SeqOf(const char* item) { return reinterpret_cast<const uint32_t*>(item); }

template <typename T>
void SeqWrite(char* item, const T& value) {
  static_assert(sizeof(T) % 8 == 0 && offsetof(T, seq) == 0 && offsetof(T, flags) == 4);
  uint64_t words[sizeof(T) / 8];
  memcpy(words, &value, sizeof(T));
  uint32_t* seq = SeqOf(item);
  const uint32_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
  __atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(seq + 1, value.flags, __ATOMIC_RELAXED);
  uint64_t* to = reinterpret_cast<uint64_t*>(item);
  for (size_t w = 1; w < sizeof(T) / 8; ++w) __atomic_store_n(&to[w], words[w], __ATOMIC_RELAXED);
  __atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);
}

template <typename T>
bool SeqRead(const char* item, T* out) {
  uint64_t words[sizeof(T) / 8];
  const uint64_t* from = reinterpret_cast<const uint64_t*>(item);
  for (int attempt = 0; attempt < HintReader::kMaxTries; ++attempt) {
    const uint32_t s1 = __atomic_load_n(SeqOf(item), __ATOMIC_ACQUIRE);
    if (s1 & 1) {  // the writer is at it: let it finish
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    for (size_t w = 0; w < sizeof(T) / 8; ++w) words[w] = __atomic_load_n(&from[w], __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(SeqOf(item), __ATOMIC_RELAXED) == s1) {
      memcpy(out, words, sizeof(T));
      out->seq = s1;
      return true;
    }
  }
  return false;
}

uint64_t* GenerationOf(char* base) {
  return reinterpret_cast<uint64_t*>(base + offsetof(ghost_hint_header, tid_generation));
}
const uint64_t* GenerationOf(const char* base) {
  return reinterpret_cast<const uint64_t*>(base + offsetof(ghost_hint_header, tid_generation));
}

// A region of `count` items of `bytes` at `offset`: inside the table, after
// the header.
absl::Status CheckRegion(const char* what, uint32_t offset, uint32_t count, uint32_t bytes,
                         uint32_t header_bytes, uint64_t table_bytes) {
  if (offset % 8 != 0 || offset < header_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: %s start at byte %u: want a multiple of 8 after the %u-byte header", what,
        offset, header_bytes));
  }
  const uint64_t end = uint64_t{offset} + uint64_t{count} * bytes;
  if (end > table_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: %u %s of %u bytes at byte %u end at %u, past the table's %u bytes", count,
        what, bytes, offset, end, table_bytes));
  }
  return absl::OkStatus();
}

absl::Status CheckItemBytes(const char* what, uint32_t bytes, uint32_t least) {
  if (bytes < least || bytes > kMaxItemBytes || bytes % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: %s of %u bytes: want a multiple of 8 in %u..%u", what, bytes, least,
        kMaxItemBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateHintHeader(const ghost_hint_header& h, uint64_t table_bytes) {
  if (h.magic != GHOST_HINT_MAGIC) {
    return absl::InvalidArgumentError(
        h.magic == 0 ? std::string("hint table: not initialised (magic 0)")
                     : absl::StrFormat("hint table: bad magic 0x%08x (want 0x%08x)", h.magic,
                                       GHOST_HINT_MAGIC));
  }
  if (h.version_major != GHOST_HINT_VERSION_MAJOR) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: layout version %u.%u, this reader reads %u.x", h.version_major,
        h.version_minor, GHOST_HINT_VERSION_MAJOR));
  }
  if (h.header_bytes < kHeaderBytes || h.header_bytes % 8 != 0 || h.header_bytes > table_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: header of %u bytes: want a multiple of 8, at least %u, within the table's "
        "%u bytes",
        h.header_bytes, kHeaderBytes, table_bytes));
  }
  if (absl::Status s = CheckItemBytes("classes", h.class_bytes, kClassBytes); !s.ok()) return s;
  if (absl::Status s = CheckItemBytes("entries", h.entry_bytes, kEntryBytes); !s.ok()) return s;
  if (h.nr_entries == 0 || h.nr_entries > GHOST_HINT_MAX_ENTRIES) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: %u entries: want 1..%u", h.nr_entries, GHOST_HINT_MAX_ENTRIES));
  }
  if (h.nr_classes > GHOST_HINT_MAX_CLASSES) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: %u classes: want at most %u", h.nr_classes, GHOST_HINT_MAX_CLASSES));
  }
  if (absl::Status s = CheckRegion("classes", h.classes_offset, h.nr_classes, h.class_bytes,
                                   h.header_bytes, table_bytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRegion("entries", h.entries_offset, h.nr_entries, h.entry_bytes,
                                   h.header_bytes, table_bytes);
      !s.ok()) {
    return s;
  }
  const uint64_t classes_end = uint64_t{h.classes_offset} + uint64_t{h.nr_classes} * h.class_bytes;
  const uint64_t entries_end = uint64_t{h.entries_offset} + uint64_t{h.nr_entries} * h.entry_bytes;
  if (h.nr_classes > 0 && h.classes_offset < entries_end && h.entries_offset < classes_end) {
    return absl::InvalidArgumentError("hint table: the classes and the entries overlap");
  }
  return absl::OkStatus();
}

// ---- the writer ----

HintWriter::HintWriter(int fd, char* base, size_t bytes, uint32_t entries, uint32_t classes)
    : fd_(fd), base_(base), bytes_(bytes), entries_(entries), classes_(classes) {
  path_ = absl::StrCat("/proc/", getpid(), "/fd/", fd_);
}

HintWriter::~HintWriter() {
  munmap(base_, bytes_);
  close(fd_);
}

absl::StatusOr<std::unique_ptr<HintWriter>> HintWriter::Create(const HintTableOptions& opts) {
  if (opts.entries == 0 || opts.entries > GHOST_HINT_MAX_ENTRIES) {
    return absl::InvalidArgumentError(absl::StrFormat("hint table: %u entries: want 1..%u",
                                                      opts.entries, GHOST_HINT_MAX_ENTRIES));
  }
  if (opts.classes > GHOST_HINT_MAX_CLASSES) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "hint table: %u classes: want at most %u", opts.classes, GHOST_HINT_MAX_CLASSES));
  }
  const uint32_t classes_offset = kHeaderBytes;
  const uint32_t entries_offset = classes_offset + opts.classes * kClassBytes;
  const size_t bytes = size_t{entries_offset} + size_t{opts.entries} * kEntryBytes;

  const int fd = memfd_create("ghost-hints", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", strerror(errno)));
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrFormat("hint table of %u bytes: %s", bytes, strerror(err)));
  }
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return absl::ResourceExhaustedError(absl::StrCat("mmap of the hint table: ", strerror(err)));
  }
  char* base = static_cast<char*>(m);
  ghost_hint_header h = {};
  h.version_major = GHOST_HINT_VERSION_MAJOR;
  h.version_minor = GHOST_HINT_VERSION_MINOR;
  h.header_bytes = kHeaderBytes;
  h.class_bytes = kClassBytes;
  h.entry_bytes = kEntryBytes;
  h.nr_classes = opts.classes;
  h.nr_entries = opts.entries;
  h.classes_offset = classes_offset;
  h.entries_offset = entries_offset;
  h.owner_pid = static_cast<uint32_t>(getpid());
  memcpy(base, &h, sizeof(h));
  for (uint32_t i = 0; i < opts.entries; ++i) {
    ghost_hint_entry e = {};
    e.class_id = GHOST_HINT_NO_CLASS;
    memcpy(base + entries_offset + size_t{i} * kEntryBytes, &e, sizeof(e));
  }
  // The magic last: a reader that opens the table early sees "not initialised".
  __atomic_store_n(reinterpret_cast<uint32_t*>(base), GHOST_HINT_MAGIC, __ATOMIC_RELEASE);
  // Sealed: no one can shrink (a reader's mapping would fault) or grow it.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    const int err = errno;
    munmap(m, bytes);
    close(fd);
    return absl::InternalError(absl::StrCat("sealing the hint table: ", strerror(err)));
  }
  return std::unique_ptr<HintWriter>(new HintWriter(fd, base, bytes, opts.entries, opts.classes));
}

// The layout Create chose: the classes right after the header, then the entries.
char* HintWriter::Class(uint32_t id) { return base_ + kHeaderBytes + size_t{id} * kClassBytes; }

ghost_hint_entry* HintWriter::Entry(uint32_t i) {
  return reinterpret_cast<ghost_hint_entry*>(Class(classes_) + size_t{i} * kEntryBytes);
}

absl::Status HintWriter::CheckClassId(uint32_t id) const {
  if (id < classes_) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("hint class %u: the table has %u classes", id, classes_));
}

absl::Status HintWriter::CheckThreadHint(const Hint& hint) const {
  if (hint.relative_deadline_ns) {
    return absl::InvalidArgumentError("a thread's deadline is absolute: set deadline_ns");
  }
  return hint.class_id ? CheckClassId(*hint.class_id) : absl::OkStatus();
}

absl::Status HintWriter::SetClass(uint32_t id, const Hint& values) {
  if (absl::Status s = CheckClassId(id); !s.ok()) return s;
  if (values.deadline_ns || values.idle || values.class_id) {
    return absl::InvalidArgumentError(
        "a hint class takes qos, relative_deadline_ns, runtime_ns and cookie only");
  }
  ghost_hint_class c = {};
  if (values.qos) c.flags |= GHOST_HINT_F_QOS, c.qos = *values.qos;
  if (values.relative_deadline_ns) {
    c.flags |= GHOST_HINT_F_DEADLINE, c.deadline_ns = *values.relative_deadline_ns;
  }
  if (values.runtime_ns) c.flags |= GHOST_HINT_F_RUNTIME, c.runtime_ns = *values.runtime_ns;
  if (values.cookie) c.flags |= GHOST_HINT_F_COOKIE, c.cookie = *values.cookie;
  SeqWrite(Class(id), c);
  return absl::OkStatus();
}

void HintWriter::Write(ghost_hint_entry* e, pid_t tid, const Hint& hint) {
  ghost_hint_entry v = {};
  v.tid = tid;
  v.class_id = hint.class_id.value_or(GHOST_HINT_NO_CLASS);
  if (hint.qos) v.flags |= GHOST_HINT_F_QOS, v.qos = *hint.qos;
  if (hint.deadline_ns) v.flags |= GHOST_HINT_F_DEADLINE, v.deadline_ns = *hint.deadline_ns;
  if (hint.runtime_ns) v.flags |= GHOST_HINT_F_RUNTIME, v.runtime_ns = *hint.runtime_ns;
  if (hint.cookie) v.flags |= GHOST_HINT_F_COOKIE, v.cookie = *hint.cookie;
  if (hint.idle) v.flags |= GHOST_HINT_F_IDLE;
  SeqWrite(reinterpret_cast<char*>(e), v);
}

absl::StatusOr<uint32_t> HintWriter::Add(pid_t tid, const Hint& hint) {
  if (tid <= 0) return absl::InvalidArgumentError(absl::StrFormat("hint for tid %d", tid));
  if (absl::Status s = CheckThreadHint(hint); !s.ok()) return s;
  if (slot_of_.contains(tid)) {
    return absl::AlreadyExistsError(absl::StrFormat("tid %d already has a hint entry", tid));
  }
  for (uint32_t n = 0; n < entries_; ++n) {
    const uint32_t i = (next_free_ + n) % entries_;
    ghost_hint_entry* e = Entry(i);
    if (__atomic_load_n(&e->tid, __ATOMIC_RELAXED) != 0) continue;
    Write(e, tid, hint);
    __atomic_fetch_add(GenerationOf(base_), 1, __ATOMIC_RELEASE);
    slot_of_[tid] = i;
    next_free_ = (i + 1) % entries_;
    return i;
  }
  return absl::ResourceExhaustedError(
      absl::StrFormat("hint table full: all %u entries in use", entries_));
}

absl::Status HintWriter::Update(pid_t tid, const Hint& hint) {
  auto it = slot_of_.find(tid);
  if (it == slot_of_.end()) {
    return absl::NotFoundError(absl::StrFormat("tid %d has no hint entry", tid));
  }
  if (absl::Status s = CheckThreadHint(hint); !s.ok()) return s;
  Write(Entry(it->second), tid, hint);
  return absl::OkStatus();
}

absl::Status HintWriter::Remove(pid_t tid) {
  auto it = slot_of_.find(tid);
  if (it == slot_of_.end()) {
    return absl::NotFoundError(absl::StrFormat("tid %d has no hint entry", tid));
  }
  ghost_hint_entry v = {};
  v.class_id = GHOST_HINT_NO_CLASS;
  SeqWrite(reinterpret_cast<char*>(Entry(it->second)), v);
  __atomic_fetch_add(GenerationOf(base_), 1, __ATOMIC_RELEASE);
  slot_of_.erase(it);
  return absl::OkStatus();
}

// ---- the reader ----

HintReader::HintReader(int fd, const char* base, size_t bytes, const ghost_hint_header& header)
    : fd_(fd), base_(base), bytes_(bytes), header_(header) {}

HintReader::~HintReader() {
  munmap(const_cast<char*>(base_), bytes_);
  close(fd_);
}

absl::StatusOr<std::unique_ptr<HintReader>> HintReader::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string what = absl::StrCat("hint table ", path, ": ", strerror(err));
    if (err == ENOENT) return absl::NotFoundError(what);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(what);
    return absl::InvalidArgumentError(what);
  }
  auto refuse = [&](const std::string& why) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("hint table ", path, ": ", why));
  };
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return refuse("not a regular file");
  // Only a table that cannot shrink is safe to map: reading past the end of
  // a truncated file kills the reader (SIGBUS).
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    return refuse("not a sealed memfd (create it with HintWriter::Create)");
  }
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  if (bytes < kHeaderBytes) {
    return refuse(absl::StrFormat("%u bytes, smaller than the header (%u)", bytes, kHeaderBytes));
  }
  void* m = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return refuse(absl::StrCat("mmap: ", strerror(errno)));
  const char* base = static_cast<const char*>(m);
  // The writer stores the magic last (and seals after it).
  const uint32_t magic = __atomic_load_n(reinterpret_cast<const uint32_t*>(base), __ATOMIC_ACQUIRE);
  ghost_hint_header h;
  memcpy(&h, base, sizeof(h));
  h.magic = magic;
  if (absl::Status s = ValidateHintHeader(h, bytes); !s.ok()) {
    munmap(m, bytes);
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return std::unique_ptr<HintReader>(new HintReader(fd, base, bytes, h));
}

bool HintReader::ReadEntry(uint32_t i, ghost_hint_entry* out) {
  return SeqRead(base_ + header_.entries_offset + size_t{i} * header_.entry_bytes, out);
}

bool HintReader::ReadClass(uint32_t i, ghost_hint_class* out) {
  return SeqRead(base_ + header_.classes_offset + size_t{i} * header_.class_bytes, out);
}

void HintReader::RebuildIndex() {
  // The generation first: a change during the scan rebuilds again next time.
  indexed_generation_ = __atomic_load_n(GenerationOf(base_), __ATOMIC_ACQUIRE);
  ++stats_.index_rebuilds;
  index_.clear();
  for (uint32_t i = 0; i < header_.nr_entries; ++i) {
    ghost_hint_entry e;
    if (!ReadEntry(i, &e)) {
      ++stats_.torn;
      continue;
    }
    if (e.tid > 0) index_.try_emplace(e.tid, i);  // a tid named twice: the first
  }
}

std::optional<Hint> HintReader::Find(pid_t tid) {
  ++stats_.lookups;
  if (tid <= 0) return std::nullopt;
  if (__atomic_load_n(GenerationOf(base_), __ATOMIC_ACQUIRE) != indexed_generation_) {
    RebuildIndex();
  }
  ghost_hint_entry e;
  for (int attempt = 0;; ++attempt) {
    auto it = index_.find(tid);
    if (it == index_.end()) return std::nullopt;
    if (!ReadEntry(it->second, &e)) {
      ++stats_.torn;
      return std::nullopt;
    }
    if (e.tid == tid) break;
    // The entry was given to another thread since the index was built.
    if (attempt > 0) return std::nullopt;
    RebuildIndex();
  }
  Hint h;
  if (e.flags & GHOST_HINT_F_QOS) h.qos = e.qos;
  if (e.flags & GHOST_HINT_F_DEADLINE) h.deadline_ns = e.deadline_ns;
  if (e.flags & GHOST_HINT_F_RUNTIME) h.runtime_ns = e.runtime_ns;
  if (e.flags & GHOST_HINT_F_COOKIE) h.cookie = e.cookie;
  h.idle = (e.flags & GHOST_HINT_F_IDLE) != 0;
  if (e.class_id != GHOST_HINT_NO_CLASS) {
    ghost_hint_class c;
    if (e.class_id >= header_.nr_classes) {
      ++stats_.bad_class_ids;
    } else if (!ReadClass(e.class_id, &c)) {
      ++stats_.torn;
    } else {
      h.class_id = e.class_id;
      if (!h.qos && (c.flags & GHOST_HINT_F_QOS)) h.qos = c.qos;
      if (c.flags & GHOST_HINT_F_DEADLINE) h.relative_deadline_ns = c.deadline_ns;
      if (!h.runtime_ns && (c.flags & GHOST_HINT_F_RUNTIME)) h.runtime_ns = c.runtime_ns;
      if (!h.cookie && (c.flags & GHOST_HINT_F_COOKIE)) h.cookie = c.cookie;
    }
  }
  ++stats_.found;
  return h;
}

}  // namespace ghost
