#include "userspace/bpf_kernel_side.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/ghost_skel.h"

namespace ghost {
namespace {

// bpf_ktime_get_ns()'s clock, for the enclave's agent heartbeat.
uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// An agent heartbeat from long ago: the class takes the agent as gone.
constexpr uint64_t kAgentGone = 1;

absl::Status Errno(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

template <typename T>
absl::StatusOr<T*> MapArray(const bpf_map* map, size_t entries, std::vector<void*>& addrs,
                            std::vector<size_t>& lens) {
  if (bpf_map__value_size(map) != sizeof(T) || bpf_map__max_entries(map) != entries) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "map %s has %u x %u bytes, this agent expects %u x %u (stale build?)", bpf_map__name(map),
        bpf_map__max_entries(map), bpf_map__value_size(map), entries, sizeof(T)));
  }
  size_t page = sysconf(_SC_PAGESIZE);
  size_t len = (sizeof(T) * entries + page - 1) / page * page;
  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
  if (addr == MAP_FAILED) return Errno(absl::StrCat("mmap of map ", bpf_map__name(map)), errno);
  addrs.push_back(addr);
  lens.push_back(len);
  return static_cast<T*>(addr);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpfKernelSide>> BpfKernelSide::Create(const ClassOptions& opts) {
  absl::StatusOr<std::unique_ptr<BpfClass>> cls = BpfClass::Load(opts);
  if (!cls.ok()) return cls.status();
  if (absl::Status s = (*cls)->Attach(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<BpfKernelSide>> ks = Open(**cls);
  if (!ks.ok()) return ks.status();
  (*ks)->owned_ = std::move(*cls);
  return ks;
}

absl::StatusOr<std::unique_ptr<BpfKernelSide>> BpfKernelSide::Create(
    std::unique_ptr<BpfClass> cls) {
  absl::StatusOr<std::unique_ptr<BpfKernelSide>> ks = Open(*cls);
  if (!ks.ok()) return ks.status();
  (*ks)->owned_ = std::move(cls);
  return ks;
}

absl::StatusOr<std::unique_ptr<BpfKernelSide>> BpfKernelSide::Open(BpfClass& cls) {
  std::unique_ptr<BpfKernelSide> ks(new BpfKernelSide(cls));
  if (absl::Status s = ks->MapMemory(); !s.ok()) return s;
  // ops.init published the class's version; an agent built for another ABI
  // must not touch its memory.
  uint32_t v = __atomic_load_n(&ks->class_info_->abi_version, __ATOMIC_ACQUIRE);
  if (v != GHOST_ABI_VERSION) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ABI mismatch: the loaded ghost class speaks ABI version %u, this agent ABI version %u",
        v, GHOST_ABI_VERSION));
  }
  ks->nr_cpus_ = static_cast<int>(ks->class_info_->nr_cpus);
  if (ks->nr_cpus_ <= 0 || ks->nr_cpus_ > GHOST_MAX_CPUS) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the class reports %d CPUs (want 1..%d)", ks->nr_cpus_, GHOST_MAX_CPUS));
  }
  return ks;
}

absl::Status BpfKernelSide::MapMemory() {
  ghost_bpf* skel = cls_->skel();
  std::vector<void*> addrs;
  std::vector<size_t> lens;
  auto sw = MapArray<ghost_status_word>(skel->maps.status_words, GHOST_MAX_THREADS, addrs, lens);
  auto qw = MapArray<ghost_queue_word>(skel->maps.queue_words, GHOST_MAX_QUEUES, addrs, lens);
  auto tx = MapArray<ghost_txn>(skel->maps.txn_slots, GHOST_MAX_CPUS, addrs, lens);
  auto ew = MapArray<ghost_enclave_word>(skel->maps.enclave_words, GHOST_MAX_ENCLAVES, addrs, lens);
  auto ci = MapArray<ghost_class_info>(skel->maps.class_info, 1, addrs, lens);
  auto cw = MapArray<ghost_cpu_word>(skel->maps.cpu_words, GHOST_MAX_CPUS, addrs, lens);
  auto rg = MapArray<ghost_ring>(skel->maps.ghost_rings, GHOST_NR_RINGS, addrs, lens);
  for (size_t i = 0; i < addrs.size(); i++) mappings_.push_back({addrs[i], lens[i]});
  for (const absl::Status& s : {sw.status(), qw.status(), tx.status(), ew.status(), ci.status(),
                                cw.status(), rg.status()}) {
    if (!s.ok()) return s;
  }
  rings_ = *rg;
  doorbell_fd_ = bpf_program__fd(skel->progs.ghost_ring_doorbell);
  cpu_words_ = *cw;
  status_words_ = *sw;
  queue_words_ = *qw;
  txn_slots_ = *tx;
  enclave_words_ = *ew;
  class_info_ = *ci;
  commit_fd_ = bpf_program__fd(skel->progs.ghost_commit);
  hand_over_fd_ = bpf_program__fd(skel->progs.ghost_hand_over);
  ctl_fd_ = bpf_program__fd(skel->progs.ghost_ctl);
  queues_fd_ = bpf_map__fd(skel->maps.queues);
  enroll_fd_ = bpf_map__fd(skel->maps.enroll);
  // Queues of a previous agent are not ours: only what this object creates.
  return absl::OkStatus();
}

BpfKernelSide::~BpfKernelSide() {
  for (Queue& q : queues_) {
    if (q.rb != nullptr) ring_buffer__free(q.rb);
    if (q.fd >= 0) close(q.fd);
  }
  for (const Mapping& m : mappings_) munmap(m.addr, m.len);
  // owned_ (if any) detaches and unloads the class after the memory is gone.
}

int BpfKernelSide::NumCpus() const { return nr_cpus_; }

uint32_t BpfKernelSide::AbiVersion() const {
  return __atomic_load_n(&class_info_->abi_version, __ATOMIC_ACQUIRE);
}

absl::Status BpfKernelSide::CheckCpusFree(EnclaveId e, const CpuList& cpus) const {
  for (int other = 0; other < GHOST_MAX_ENCLAVES; other++) {
    if (static_cast<EnclaveId>(other) == e) continue;
    const ghost_enclave_word& w = enclave_words_[other];
    if (!(__atomic_load_n(&w.flags, __ATOMIC_ACQUIRE) & GHOST_ENCLAVE_INUSE)) continue;
    for (int cpu : cpus.ToVector()) {
      if (cpu < GHOST_MAX_CPUS && ((w.cpus[cpu / 64] >> (cpu % 64)) & 1)) {
        return absl::AlreadyExistsError(
            absl::StrFormat("CPU %d already belongs to enclave %d", cpu, other));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EnclaveId> BpfKernelSide::CreateEnclave(const EnclaveOptions& opts) {
  if (opts.cpus.Empty()) return absl::InvalidArgumentError("an enclave needs at least one CPU");
  for (int cpu : opts.cpus.ToVector()) {
    if (cpu >= nr_cpus_) {
      return absl::InvalidArgumentError(
          absl::StrFormat("CPU %d does not exist (the class has %d CPUs)", cpu, nr_cpus_));
    }
  }
  if (opts.watchdog_ms == 0) return absl::InvalidArgumentError("watchdog_ms must be positive");
  if (opts.id != GHOST_ENCLAVE_NONE && opts.id >= GHOST_MAX_ENCLAVES) {
    return absl::InvalidArgumentError(
        absl::StrFormat("no enclave %u (0..%d)", opts.id, GHOST_MAX_ENCLAVES - 1));
  }
  // The class would cap it anyway (enclaves.bpf.h); saying so beats a silent cap.
  const uint32_t max_watchdog_ms = __atomic_load_n(&class_info_->max_watchdog_ms, __ATOMIC_ACQUIRE);
  if (opts.watchdog_ms > max_watchdog_ms) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "watchdog_ms %u is above %u ms, half the class's kernel stall timeout (%u ms): a thread "
        "held that long could get the class ejected",
        opts.watchdog_ms, max_watchdog_ms,
        __atomic_load_n(&class_info_->kernel_timeout_ms, __ATOMIC_ACQUIRE)));
  }
  absl::MutexLock l(&mu_);
  int id = -1;
  if (opts.id != GHOST_ENCLAVE_NONE) {
    const bool in_use = __atomic_load_n(&enclave_words_[opts.id].flags, __ATOMIC_ACQUIRE) &
                        GHOST_ENCLAVE_INUSE;
    if (in_use && adopting_ != opts.id) {
      return absl::AlreadyExistsError(absl::StrFormat("enclave %u is in use", opts.id));
    }
    id = static_cast<int>(opts.id);
  } else {
    for (int e = 0; e < GHOST_MAX_ENCLAVES && id < 0; e++) {
      if (!(__atomic_load_n(&enclave_words_[e].flags, __ATOMIC_ACQUIRE) & GHOST_ENCLAVE_INUSE)) {
        id = e;
      }
    }
    if (id < 0) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("all %d enclaves are in use", GHOST_MAX_ENCLAVES));
    }
  }
  if (absl::Status s = CheckCpusFree(id, opts.cpus); !s.ok()) return s;
  ghost_enclave_word& w = enclave_words_[id];
  const bool adopt = adopting_ == static_cast<EnclaveId>(id);
  adopting_ = GHOST_ENCLAVE_NONE;
  // Adopting a previous agent's enclave keeps it in use throughout, and its
  // default queue until ours replaces it (SetDefaultQueue).
  uint64_t cpus[GHOST_CPU_MASK_WORDS] = {};
  for (int cpu : opts.cpus.ToVector()) cpus[cpu / 64] |= 1ULL << (cpu % 64);
  for (int i = 0; i < GHOST_CPU_MASK_WORDS; i++) __atomic_store_n(&w.cpus[i], cpus[i], __ATOMIC_RELAXED);
  if (!adopt) w.default_queue = GHOST_QUEUE_NONE;
  // A new enclave starts with unused rings; an adopted one keeps its agent's
  // (the successor Ring::Attach-es them and reaps what is there).
  if (!adopt) ClearRings(id);
  __atomic_store_n(&w.watchdog_ms, opts.watchdog_ms, __ATOMIC_RELEASE);
  w.tick_msgs = opts.tick_messages ? GHOST_ENCLAVE_MSG_TICK : 0;
  // No heartbeat kept until an agent says it runs (SetAgentAbsent, Heartbeat);
  // while one is taking over, the fallback keeps running the threads.
  __atomic_store_n(&w.agent_heartbeat_ns, agent_absent_[id] ? kAgentGone : 0, __ATOMIC_RELEASE);
  // Transaction slots of these CPUs are ours now: whatever an earlier owner
  // left OPEN (half written), READY (never committed) or DONE (unread) is
  // free again; CLAIMED ones belong to the class, which finishes them.
  for (int cpu : opts.cpus.ToVector()) {
    for (uint32_t st : {GHOST_TXN_OPEN, GHOST_TXN_READY, GHOST_TXN_DONE}) {
      uint32_t expected = st;
      if (__atomic_compare_exchange_n(&txn_slots_[cpu].state, &expected, GHOST_TXN_FREE, false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        break;
      }
    }
  }
  __atomic_store_n(&w.flags, GHOST_ENCLAVE_INUSE, __ATOMIC_RELEASE);
  return static_cast<EnclaveId>(id);
}

absl::Status BpfKernelSide::DestroyEnclave(EnclaveId enclave) {
  if (enclave >= GHOST_MAX_ENCLAVES) {
    return absl::InvalidArgumentError(absl::StrFormat("no enclave %u", enclave));
  }
  absl::MutexLock l(&mu_);
  ghost_enclave_word& w = enclave_words_[enclave];
  if (!(w.flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", enclave));
  }
  // Its threads stop being delegated: the class runs them in the FIFO.
  __atomic_store_n(&w.flags, 0, __ATOMIC_RELEASE);
  memset(w.cpus, 0, sizeof(w.cpus));
  w.default_queue = GHOST_QUEUE_NONE;
  ClearRings(enclave);
  return absl::OkStatus();
}

void BpfKernelSide::ClearRings(EnclaveId e) {
  if (e >= GHOST_MAX_ENCLAVES) return;
  for (int n = 0; n < GHOST_RING_MAX_NODES; n++) {
    ghost_ring* r = &rings_[GHOST_RING_INDEX(e, n)];
    // Unused first: consumers skip a ring whose version is 0 (and the CASes
    // of any consumer mid-claim name words that are about to vanish). A
    // thread already moved by an entry settles into a ring without that
    // entry: its settle fails harmlessly (nr_ring_settle_errors).
    __atomic_store_n(&r->info.layout_version, 0, __ATOMIC_SEQ_CST);
    memset(reinterpret_cast<char*>(r) + sizeof(r->info), 0, sizeof(*r) - sizeof(r->info));
    memset(&r->info, 0, sizeof(r->info));
  }
}

int BpfKernelSide::NumNodes() const {
  const uint32_t n = __atomic_load_n(&class_info_->nr_nodes, __ATOMIC_ACQUIRE);
  return n < 1 ? 1 : n > GHOST_RING_MAX_NODES ? GHOST_RING_MAX_NODES : static_cast<int>(n);
}

int BpfKernelSide::NodeOfCpu(int cpu) const {
  if (cpu < 0 || cpu >= GHOST_MAX_CPUS) return 0;
  const int n = class_info_->cpu_node[cpu];
  return n < NumNodes() ? n : 0;
}

ghost_ring* BpfKernelSide::RingRegion(EnclaveId enclave, int node) {
  if (enclave >= GHOST_MAX_ENCLAVES || node < 0 || node >= NumNodes()) return nullptr;
  return &rings_[GHOST_RING_INDEX(enclave, node)];
}

absl::Status BpfKernelSide::RingDoorbell(EnclaveId enclave, absl::Span<const uint32_t> kicks) {
  if (enclave >= GHOST_MAX_ENCLAVES) {
    return absl::InvalidArgumentError(absl::StrFormat("no enclave %u", enclave));
  }
  if (kicks.size() > static_cast<size_t>(NumNodes())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%u kick counts for %d nodes", static_cast<uint32_t>(kicks.size()), NumNodes()));
  }
  ghost_ring_doorbell_args args = {};
  args.enclave = enclave;
  for (size_t n = 0; n < kicks.size(); n++) args.kicks[n] = kicks[n];
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
  if (bpf_prog_test_run_opts(doorbell_fd_, &run) != 0) {
    return Errno("running ghost_ring_doorbell", errno);
  }
  if (static_cast<int>(run.retval) == -ENOENT) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", enclave));
  }
  return absl::OkStatus();
}

BpfKernelSide::FastPathCounters BpfKernelSide::FastPathStats() const {
  FastPathCounters f;
  const auto* bss = cls_->skel()->bss;
  for (int c = 0; c < nr_cpus_; c++) {
    f.cpu_pops.push_back(__atomic_load_n(&bss->ring_cpu_pops[c], __ATOMIC_RELAXED));
    f.cpu_steals.push_back(__atomic_load_n(&bss->ring_cpu_steals[c], __ATOMIC_RELAXED));
    f.cpu_runs.push_back(__atomic_load_n(&bss->ring_cpu_runs[c], __ATOMIC_RELAXED));
    f.pops += f.cpu_pops.back();
    f.steals += f.cpu_steals.back();
  }
  f.ring_runs = __atomic_load_n(&bss->nr_runs_ring, __ATOMIC_RELAXED);
  for (int r = 0; r <= GHOST_RING_STALE_LAST; r++) {
    f.stale[r] = __atomic_load_n(&bss->nr_ring_stale[r], __ATOMIC_RELAXED);
  }
  f.settle_errors = __atomic_load_n(&bss->nr_ring_settle_errors, __ATOMIC_RELAXED);
  f.doorbells = __atomic_load_n(&bss->nr_doorbells, __ATOMIC_RELAXED);
  f.doorbell_kicks = __atomic_load_n(&bss->nr_doorbell_kicks, __ATOMIC_RELAXED);
  f.doorbell_steal_kicks = __atomic_load_n(&bss->nr_doorbell_steal_kicks, __ATOMIC_RELAXED);
  f.wakeup_pushes = __atomic_load_n(&bss->nr_ring_wakeup_pushes, __ATOMIC_RELAXED);
  f.wakeup_refused = __atomic_load_n(&bss->nr_ring_wakeup_refused, __ATOMIC_RELAXED);
  f.wakeup_moves = __atomic_load_n(&bss->nr_ring_wakeup_moves, __ATOMIC_RELAXED);
  for (int e = 0; e < GHOST_MAX_ENCLAVES; e++) {
    f.enclave_ring_runs[e] = __atomic_load_n(&bss->enclave_runs[e][kRunRing], __ATOMIC_RELAXED);
  }
  return f;
}

absl::StatusOr<QueueId> BpfKernelSide::CreateQueue(const QueueOptions& opts) {
  size_t page = sysconf(_SC_PAGESIZE);
  if (opts.ring_bytes < page || (opts.ring_bytes & (opts.ring_bytes - 1)) != 0 ||
      opts.ring_bytes > (1u << 30)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue size %u must be a power of two between %u and 1 GiB", opts.ring_bytes, page));
  }
  if (opts.wake_cpu < -1 || opts.wake_cpu >= nr_cpus_) {
    return absl::InvalidArgumentError(absl::StrFormat("no CPU %d to wake", opts.wake_cpu));
  }
  absl::MutexLock l(&mu_);
  if (opts.enclave >= GHOST_MAX_ENCLAVES ||
      !(enclave_words_[opts.enclave].flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", opts.enclave));
  }
  int id = -1;
  for (int q = 0; q < GHOST_MAX_QUEUES; q++) {
    if (queues_[q].fd < 0 && !retired_[q] && !(queue_words_[q].flags & GHOST_QUEUE_INUSE)) {
      id = q;
      break;
    }
  }
  if (id < 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("all %d queues are in use", GHOST_MAX_QUEUES));
  }
  std::string name = absl::StrCat("ghost_q", id);
  int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, name.c_str(), 0, 0, opts.ring_bytes, nullptr);
  if (fd < 0) return Errno("creating a queue ring buffer", errno);
  Queue& q = queues_[id];
  q.self = this;
  q.rb = ring_buffer__new(fd, &BpfKernelSide::OnRecord, &q, nullptr);
  if (q.rb == nullptr) {
    int err = errno;
    close(fd);
    return Errno("opening a queue ring buffer", err);
  }
  q.fd = fd;
  ghost_queue_word& w = queue_words_[id];
  // Positions recorded in the slot's previous ring mean nothing in this one
  // (ASSOCIATE_QUEUE compares them: queues.bpf.h).
  __atomic_store_n(&w.generation, w.generation + 1, __ATOMIC_RELEASE);
  // Losses are counted per queue, not per slot: a previous owner's are not ours.
  __atomic_store_n(&w.dropped, 0, __ATOMIC_RELEASE);
  w.enclave = opts.enclave;
  w.wake_cpu = opts.wake_cpu < 0 ? ~0u : static_cast<uint32_t>(opts.wake_cpu);
  uint32_t qid = id;
  if (bpf_map_update_elem(queues_fd_, &qid, &fd, BPF_ANY) != 0) {
    int err = errno;
    ring_buffer__free(q.rb);
    close(fd);
    q = Queue{};
    return Errno("installing the queue in the class", err);
  }
  // In use last: BPF produces only into a queue whose word says so. The
  // barrier keeps counting across reuse of the slot (never goes back).
  __atomic_store_n(&w.flags, GHOST_QUEUE_INUSE | (opts.wake_agent ? GHOST_QUEUE_WAKE_AGENT : 0),
                   __ATOMIC_RELEASE);
  return static_cast<QueueId>(id);
}

absl::Status BpfKernelSide::DestroyQueue(QueueId queue) {
  absl::MutexLock l(&mu_);
  if (queue >= GHOST_MAX_QUEUES || queues_[queue].fd < 0) {
    return absl::NotFoundError(absl::StrFormat("queue %u does not exist", queue));
  }
  Queue& q = queues_[queue];
  __atomic_store_n(&queue_words_[queue].flags, 0, __ATOMIC_RELEASE);
  bpf_map_delete_elem(queues_fd_, &queue);
  for (int e = 0; e < GHOST_MAX_ENCLAVES; e++) {
    if (enclave_words_[e].default_queue == queue) enclave_words_[e].default_queue = GHOST_QUEUE_NONE;
  }
  ring_buffer__free(q.rb);
  close(q.fd);
  q = Queue{};
  return absl::OkStatus();
}

absl::Status BpfKernelSide::SetDefaultQueue(EnclaveId enclave, QueueId queue) {
  absl::MutexLock l(&mu_);
  if (enclave >= GHOST_MAX_ENCLAVES || !(enclave_words_[enclave].flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", enclave));
  }
  if (queue >= GHOST_MAX_QUEUES || queues_[queue].fd < 0) {
    return absl::NotFoundError(absl::StrFormat("queue %u does not exist", queue));
  }
  if (queue_words_[queue].enclave != enclave) {
    return absl::InvalidArgumentError(
        absl::StrFormat("queue %u belongs to enclave %u, not %u", queue,
                        queue_words_[queue].enclave, enclave));
  }
  __atomic_store_n(&enclave_words_[enclave].default_queue, queue, __ATOMIC_RELEASE);
  return absl::OkStatus();
}

absl::Status BpfKernelSide::RunCtl(ghost_ctl_args& args) {
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
  if (bpf_prog_test_run_opts(ctl_fd_, &run) != 0) return Errno("running ghost_ctl", errno);
  return absl::OkStatus();
}

absl::Status BpfKernelSide::AssociateQueue(Tid tid, QueueId queue) {
  ghost_ctl_args args = {.op = GHOST_CTL_ASSOCIATE_QUEUE, .queue = queue, .tid = tid};
  if (absl::Status s = RunCtl(args); !s.ok()) return s;
  switch (-args.ret) {
    case 0: return absl::OkStatus();
    case ENOENT:
      return absl::NotFoundError(absl::StrFormat("no enclave thread with tid %u", tid));
    case EBUSY:
      return absl::FailedPreconditionError(absl::StrFormat(
          "thread %u still has unread messages in its old queue; drain it first", tid));
    case EINVAL:
      return absl::InvalidArgumentError(
          absl::StrFormat("queue %u does not exist in thread %u's enclave", queue, tid));
    default: return Errno("ASSOCIATE_QUEUE", -args.ret);
  }
}

absl::Status BpfKernelSide::ConfigQueueWakeup(QueueId queue, int wake_cpu, bool wake_agent) {
  absl::MutexLock l(&mu_);
  if (queue >= GHOST_MAX_QUEUES || queues_[queue].fd < 0) {
    return absl::NotFoundError(absl::StrFormat("queue %u does not exist", queue));
  }
  if (wake_cpu < -1 || wake_cpu >= nr_cpus_) {
    return absl::InvalidArgumentError(absl::StrFormat("no CPU %d to wake", wake_cpu));
  }
  ghost_queue_word& w = queue_words_[queue];
  w.wake_cpu = wake_cpu < 0 ? ~0u : static_cast<uint32_t>(wake_cpu);
  __atomic_store_n(&w.flags, GHOST_QUEUE_INUSE | (wake_agent ? GHOST_QUEUE_WAKE_AGENT : 0),
                   __ATOMIC_RELEASE);
  return absl::OkStatus();
}

int BpfKernelSide::OnRecord(void* ctx, void* data, size_t size) {
  Queue* q = static_cast<Queue*>(ctx);
  if (size < sizeof(ghost_msg)) {
    q->self->malformed_.fetch_add(1);
    return 0;
  }
  q->consumed++;
  if (q->fn != nullptr) (*q->fn)(*static_cast<const ghost_msg*>(data));
  return 0;
}

size_t BpfKernelSide::ConsumeQueue(QueueId queue, absl::FunctionRef<void(const ghost_msg&)> fn) {
  if (queue >= GHOST_MAX_QUEUES || queues_[queue].rb == nullptr) return 0;
  Queue& q = queues_[queue];
  q.fn = &fn;
  q.consumed = 0;
  ring_buffer__consume(q.rb);
  q.fn = nullptr;
  return q.consumed;
}

absl::Status BpfKernelSide::WaitQueue(QueueId queue, absl::Duration timeout) {
  if (queue >= GHOST_MAX_QUEUES || queues_[queue].rb == nullptr) {
    return absl::NotFoundError(absl::StrFormat("queue %u does not exist", queue));
  }
  ring_buffer* rb = queues_[queue].rb;
  if (ring__avail_data_size(ring_buffer__ring(rb, 0)) > 0) return absl::OkStatus();
  epoll_event ev;
  int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  int n = epoll_wait(ring_buffer__epoll_fd(rb), &ev, 1, ms < 0 ? 0 : ms);
  if (n < 0 && errno != EINTR) return Errno("waiting for a queue", errno);
  if (n <= 0 && ring__avail_data_size(ring_buffer__ring(rb, 0)) == 0) {
    return absl::DeadlineExceededError("no message");
  }
  return absl::OkStatus();
}

int BpfKernelSide::QueueFd(QueueId queue) const {
  if (queue >= GHOST_MAX_QUEUES || queues_[queue].rb == nullptr) return -1;
  return ring_buffer__epoll_fd(queues_[queue].rb);  // level-triggered on the ring
}

const ghost_queue_word& BpfKernelSide::QueueWord(QueueId queue) const {
  static const ghost_queue_word kNone = {};
  if (queue >= GHOST_MAX_QUEUES) return kNone;
  return queue_words_[queue];
}

ghost_txn* BpfKernelSide::TxnSlot(int cpu) {
  if (cpu < 0 || cpu >= nr_cpus_) return nullptr;
  return &txn_slots_[cpu];
}

absl::Status BpfKernelSide::Commit(const CpuList& cpus) {
  ghost_commit_args args = {};
  for (int cpu : cpus.ToVector()) {
    if (cpu >= nr_cpus_) {
      return absl::InvalidArgumentError(
          absl::StrFormat("CPU %d does not exist (the class has %d CPUs)", cpu, nr_cpus_));
    }
    args.cpus[cpu / 64] |= 1ULL << (cpu % 64);
  }
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
  commit_syscalls_.fetch_add(1);
  if (bpf_prog_test_run_opts(commit_fd_, &run) != 0) return Errno("running ghost_commit", errno);
  return absl::OkStatus();
}

absl::Status BpfKernelSide::SetWantOnCpu(Tid tid, bool want) {
  ghost_ctl_args args = {.op = GHOST_CTL_SET_WANT_ON_CPU, .tid = tid, .arg = want ? 1u : 0u};
  if (absl::Status s = RunCtl(args); !s.ok()) return s;
  if (args.ret == -ENOENT) {
    return absl::NotFoundError(absl::StrFormat("no enclave thread with tid %u", tid));
  }
  if (args.ret != 0) return Errno("SET_WANT_ON_CPU", -args.ret);
  return absl::OkStatus();
}

absl::Status BpfKernelSide::ArmCpuTimer(int cpu, absl::Duration delay, uint64_t cookie) {
  if (delay < absl::ZeroDuration()) return absl::InvalidArgumentError("negative timer delay");
  ghost_ctl_args args = {.op = GHOST_CTL_ARM_TIMER,
                         .arg = static_cast<__u64>(absl::ToInt64Nanoseconds(delay)),
                         .cookie = cookie,
                         .cpu = static_cast<__u32>(cpu)};
  if (absl::Status s = RunCtl(args); !s.ok()) return s;
  if (args.ret == -EINVAL) {
    return absl::InvalidArgumentError(absl::StrFormat("CPU %d is in no enclave", cpu));
  }
  if (args.ret != 0) return Errno("ARM_TIMER", -args.ret);
  return absl::OkStatus();
}

bool BpfKernelSide::TakeYieldRequest(int cpu) {
  if (cpu < 0 || cpu >= GHOST_MAX_CPUS) return false;
  uint32_t* req = &cpu_words_[cpu].yield_request;
  // A plain load first: the common case costs no write to a shared line.
  return __atomic_load_n(req, __ATOMIC_RELAXED) != 0 &&
         __atomic_exchange_n(req, 0, __ATOMIC_ACQ_REL) != 0;
}

void BpfKernelSide::SetAgentAsleep(int cpu, bool asleep) {
  if (cpu < 0 || cpu >= GHOST_MAX_CPUS) return;
  // Sequentially consistent: set before the agent blocks, cleared before it
  // makes decisions again.
  __atomic_store_n(&cpu_words_[cpu].agent_asleep, asleep ? 1u : 0u, __ATOMIC_SEQ_CST);
}

void BpfKernelSide::SetPinnedPush(int cpu, bool on) {
  if (cpu < 0 || cpu >= GHOST_MAX_CPUS) return;
  __atomic_store_n(&cpu_words_[cpu].pinned_push, on ? 1u : 0u, __ATOMIC_SEQ_CST);
}

std::optional<bool> BpfKernelSide::CpuBusy(int cpu) const {
  if (cpu < 0 || cpu >= nr_cpus_) return std::nullopt;
  // The class's own flag (bpf/progs/transactions.bpf.h), in its mmapped .bss.
  return __atomic_load_n(&cls_->skel()->bss->cpu_busy[cpu], __ATOMIC_ACQUIRE) != 0;
}

absl::Status BpfKernelSide::HandOver(int cpu, absl::Span<HandOverEntry> entries) {
  if (cpu < 0 || cpu >= nr_cpus_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CPU %d does not exist (the class has %d CPUs)", cpu, nr_cpus_));
  }
  for (size_t at = 0; at < entries.size(); at += GHOST_HAND_OVER_MAX) {
    const size_t n = std::min<size_t>(GHOST_HAND_OVER_MAX, entries.size() - at);
    ghost_hand_over_args args = {.cpu = static_cast<__u32>(cpu), .nr = static_cast<__u32>(n)};
    for (size_t i = 0; i < n; ++i) {
      args.entries[i].tid = entries[at + i].tid;
      args.entries[i].task_seqnum = entries[at + i].seqnum;
    }
    // A syscall program's context is copied back to ctx_in.
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
    hand_over_syscalls_.fetch_add(1);
    if (bpf_prog_test_run_opts(hand_over_fd_, &run) != 0) {
      return Errno("running ghost_hand_over", errno);
    }
    for (size_t i = 0; i < n; ++i) entries[at + i].result = args.entries[i].result;
  }
  return absl::OkStatus();
}

absl::Status BpfKernelSide::RegisterAgentThread(pid_t tid, bool global) {
  __u32 key = static_cast<__u32>(tid);
  __u32 val = (global ? GHOST_AGENT_GLOBAL : GHOST_AGENT_PER_CPU) |
              (static_cast<__u32>(agent_enclave_) << GHOST_AGENT_ENCLAVE_SHIFT);
  if (bpf_map_update_elem(bpf_map__fd(cls_->skel()->maps.agent_tids), &key, &val, BPF_ANY) != 0) {
    return Errno("registering an agent thread", errno);
  }
  return absl::OkStatus();
}

void BpfKernelSide::ForgetAgentThreads(EnclaveId e) {
  const int fd = bpf_map__fd(cls_->skel()->maps.agent_tids);
  std::vector<__u32> mine;
  __u32 key, next, val;
  for (int err = bpf_map_get_next_key(fd, nullptr, &next); err == 0;
       err = bpf_map_get_next_key(fd, &key, &next)) {
    key = next;
    if (bpf_map_lookup_elem(fd, &key, &val) == 0 && val >> GHOST_AGENT_ENCLAVE_SHIFT == e) {
      mine.push_back(key);
    }
  }
  for (__u32 k : mine) bpf_map_delete_elem(fd, &k);
}

absl::Status BpfKernelSide::SetEnclaveCpuMessages(EnclaveId enclave, uint32_t msg_bits) {
  if (msg_bits & ~(GHOST_ENCLAVE_MSG_TICK | GHOST_ENCLAVE_MSG_NOT_IDLE)) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown CPU message bits %#x", msg_bits));
  }
  absl::MutexLock l(&mu_);
  if (enclave >= GHOST_MAX_ENCLAVES || !(enclave_words_[enclave].flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", enclave));
  }
  __atomic_store_n(&enclave_words_[enclave].tick_msgs, msg_bits, __ATOMIC_RELEASE);
  return absl::OkStatus();
}

absl::StatusOr<bool> BpfKernelSide::ClearPreviousAgent(EnclaveId e) {
  if (e >= GHOST_MAX_ENCLAVES) return absl::InvalidArgumentError(absl::StrFormat("no enclave %u", e));
  ForgetAgentThreads(e);
  absl::MutexLock l(&mu_);
  agent_absent_[e] = true;
  ghost_enclave_word& w = enclave_words_[e];
  if (!(__atomic_load_n(&w.flags, __ATOMIC_ACQUIRE) & GHOST_ENCLAVE_INUSE)) return false;
  // Its threads waited for a dead agent (up to its watchdog); from now on the
  // fallback runs them at once, until our agents run.
  __atomic_store_n(&w.agent_heartbeat_ns, kAgentGone, __ATOMIC_RELEASE);
  adopting_ = e;
  return true;
}

absl::StatusOr<uint64_t> BpfKernelSide::DrainQueueSlot(uint32_t q) {
  __u32 ring_id = 0;
  if (bpf_map_lookup_elem(queues_fd_, &q, &ring_id) != 0) return 0;  // no ring
  int fd = bpf_map_get_fd_by_id(ring_id);
  if (fd < 0) return Errno("opening a previous agent's queue", errno);
  uint64_t discarded = 0;
  ring_buffer* rb = ring_buffer__new(
      fd, [](void* n, void*, size_t) { ++*static_cast<uint64_t*>(n); return 0; }, &discarded,
      nullptr);
  if (rb == nullptr) {
    int err = errno;
    close(fd);
    return Errno("reading a previous agent's queue", err);
  }
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  close(fd);
  return discarded;
}

absl::StatusOr<uint64_t> BpfKernelSide::RetirePreviousQueues(EnclaveId e) {
  absl::MutexLock l(&mu_);
  uint64_t discarded = 0;
  for (uint32_t q = 0; q < GHOST_MAX_QUEUES; q++) {
    if (queues_[q].fd >= 0) continue;  // ours
    ghost_queue_word& w = queue_words_[q];
    if (!(__atomic_load_n(&w.flags, __ATOMIC_ACQUIRE) & GHOST_QUEUE_INUSE) ||
        __atomic_load_n(&w.enclave, __ATOMIC_ACQUIRE) != e) {
      continue;  // free, or another enclave's: not ours to touch
    }
    // Not in use first: BPF stops producing. Then discard what the ring
    // holds, so no thread naming this queue has unread messages in it
    // (ASSOCIATE_QUEUE compares its last position with this ring's reader).
    __atomic_store_n(&w.flags, 0, __ATOMIC_RELEASE);
    retired_[q] = true;
    absl::StatusOr<uint64_t> n = DrainQueueSlot(q);
    if (!n.ok()) return n.status();
    discarded += *n;
  }
  return discarded;
}

uint64_t BpfKernelSide::DrainRetiredQueues() {
  absl::MutexLock l(&mu_);
  uint64_t discarded = 0;
  for (uint32_t q = 0; q < GHOST_MAX_QUEUES; q++) {
    if (!retired_[q]) continue;
    absl::StatusOr<uint64_t> n = DrainQueueSlot(q);
    if (n.ok()) discarded += *n;
  }
  return discarded;
}

void BpfKernelSide::ReleasePreviousQueues() {
  absl::MutexLock l(&mu_);
  for (uint32_t q = 0; q < GHOST_MAX_QUEUES; q++) {
    if (!retired_[q]) continue;
    bpf_map_delete_elem(queues_fd_, &q);  // the ring goes with its last reference
    retired_[q] = false;
  }
}

absl::Status BpfKernelSide::SetAgentAbsent(EnclaveId e, bool absent) {
  absl::MutexLock l(&mu_);
  if (e >= GHOST_MAX_ENCLAVES || !(enclave_words_[e].flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", e));
  }
  agent_absent_[e] = absent;
  __atomic_store_n(&enclave_words_[e].agent_heartbeat_ns, absent ? kAgentGone : MonotonicNs(),
                   __ATOMIC_RELEASE);
  return absl::OkStatus();
}

void BpfKernelSide::Heartbeat(EnclaveId e) {
  if (e >= GHOST_MAX_ENCLAVES || agent_absent_[e]) return;
  __atomic_store_n(&enclave_words_[e].agent_heartbeat_ns, MonotonicNs(), __ATOMIC_RELEASE);
}

void BpfKernelSide::AgentHeartbeat(QueueId queue) {
  if (queue >= GHOST_MAX_QUEUES) return;
  const ghost_queue_word& q = queue_words_[queue];
  if (!(__atomic_load_n(&q.flags, __ATOMIC_ACQUIRE) & GHOST_QUEUE_INUSE)) return;
  const uint32_t e = __atomic_load_n(&q.enclave, __ATOMIC_ACQUIRE);
  if (e >= GHOST_MAX_ENCLAVES) return;
  __u64* hb = &enclave_words_[e].agent_heartbeat_ns;
  // Only over a time: 0 (no heartbeat kept) and kAgentGone (absent, written
  // by SetAgentAbsent, possibly just now) stay as they are.
  __u64 seen = __atomic_load_n(hb, __ATOMIC_ACQUIRE);
  const uint64_t now = MonotonicNs();
  if (seen <= kAgentGone || seen >= now) return;
  __atomic_compare_exchange_n(hb, &seen, now, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

absl::Status BpfKernelSide::EnrollPid(pid_t pid, EnclaveId enclave) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrFormat("bad pid %d", pid));
  if (enclave >= GHOST_MAX_ENCLAVES || !(enclave_words_[enclave].flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrFormat("enclave %u does not exist", enclave));
  }
  __u32 key = static_cast<__u32>(pid), val = enclave;
  if (bpf_map_update_elem(enroll_fd_, &key, &val, BPF_ANY) != 0) {
    return Errno("enrolling a pid", errno);
  }
  return absl::OkStatus();
}

}  // namespace ghost
