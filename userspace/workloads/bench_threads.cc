#include "userspace/workloads/bench_threads.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace ghost {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ComputeFor(int64_t ns) {
  const int64_t end = ThreadCpuNs() + ns;
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 64; i++) sink = sink * 6364136223846793005ULL + 1;
  } while (ThreadCpuNs() < end);
}

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

absl::Status SwitchToSchedExt() {
  sched_param p = {.sched_priority = 0};
  if (sched_setscheduler(0, kSchedExtPolicy, &p) != 0) {
    int err = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        "sched_setscheduler(SCHED_EXT): ", strerror(err),
        err == EINVAL ? " (kernel without sched_ext? use --nosched-ext)" : ""));
  }
  return absl::OkStatus();
}

absl::Status CheckSchedExtSupported(const EnrollFn& enroll) {
  absl::Status s;
  std::thread([&s, &enroll] {
    if (enroll) s = enroll(static_cast<pid_t>(gettid()));
    if (s.ok()) s = SwitchToSchedExt();
  }).join();
  return s;
}

int RunBySchedExtClass() {
  FILE* f = fopen("/proc/thread-self/sched", "r");
  if (f == nullptr) return -1;
  char line[256];
  int v = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "ext.enabled", 11) == 0) {
      const char* colon = strchr(line, ':');
      if (colon) v = atoi(colon + 1);
    }
  }
  fclose(f);
  return v;
}

int AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

struct ThreadGroup::Shared {
  absl::Mutex mu;
  int reported = 0;
  bool go = false, abort = false;
  std::string error;
  std::string class_error;
  std::vector<bool> done;
  int ndone = 0;
};

ThreadGroup::~ThreadGroup() {
  if (shared_ == nullptr) return;
  if (!shared_->go) {  // never started: let the threads go home
    absl::MutexLock l(&shared_->mu);
    shared_->abort = true;
  }
  for (size_t i = 0; i < threads_.size(); i++) {
    if (joined_[i]) continue;
    bool done;
    {
      absl::MutexLock l(&shared_->mu);
      done = shared_->done[i];
    }
    if (done) {
      threads_[i].join();
    } else {
      threads_[i].detach();
    }
  }
}

int ThreadGroup::Add(std::function<void()> body) {
  pending_.push_back(std::move(body));
  return static_cast<int>(pending_.size()) - 1;
}

absl::Status ThreadGroup::Start(absl::Time deadline) {
  const int n = static_cast<int>(pending_.size());
  shared_ = std::make_shared<Shared>();
  shared_->done.assign(n, false);
  joined_.assign(n, false);
  for (int i = 0; i < n; i++) {
    threads_.emplace_back([sh = shared_, body = std::move(pending_[i]), i, ext = sched_ext_,
                           expect = expect_class_, enroll = enroll_] {
      absl::Status s = enroll ? enroll(static_cast<pid_t>(gettid())) : absl::OkStatus();
      if (s.ok() && ext) s = SwitchToSchedExt();
      bool run;
      {
        absl::MutexLock l(&sh->mu);
        sh->reported++;
        if (!s.ok() && sh->error.empty()) sh->error = absl::StrCat("thread ", i, ": ", s.message());
        sh->mu.Await(absl::Condition(
            +[](Shared* x) { return x->go || x->abort; }, sh.get()));
        run = sh->go;
      }
      if (run) body();
      const int in_class = run && expect ? RunBySchedExtClass() : 1;
      absl::MutexLock l(&sh->mu);
      if (in_class != 1 && sh->class_error.empty()) {
        sh->class_error = absl::StrCat("thread ", i, " was not run by a sched_ext class (ext.enabled=",
                                       in_class, ")");
      }
      sh->done[i] = true;
      sh->ndone++;
    });
  }
  pending_.clear();
  absl::MutexLock l(&shared_->mu);
  Shared* sh = shared_.get();
  auto all_reported = [sh, n] { return sh->reported == n; };
  bool ok = shared_->mu.AwaitWithDeadline(absl::Condition(&all_reported), deadline);
  if (!ok) shared_->error = absl::StrCat(n - shared_->reported, " of ", n,
                                         " threads did not start before the deadline");
  if (!shared_->error.empty()) {
    shared_->abort = true;
    return absl::FailedPreconditionError(shared_->error);
  }
  shared_->go = true;
  return absl::OkStatus();
}

int ThreadGroup::JoinUntil(absl::Time deadline) {
  if (shared_ == nullptr) return 0;
  const int n = size();
  {
    absl::MutexLock l(&shared_->mu);
    shared_->mu.AwaitWithDeadline(
        absl::Condition(+[](Shared* x) { return x->ndone == static_cast<int>(x->done.size()); },
                        shared_.get()),
        deadline);
  }
  int unfinished = 0;
  for (int i = 0; i < n; i++) {
    if (joined_[i]) continue;
    bool done;
    {
      absl::MutexLock l(&shared_->mu);
      done = shared_->done[i];
    }
    if (done) {
      threads_[i].join();
      joined_[i] = true;
    } else {
      unfinished++;
    }
  }
  return unfinished;
}

std::string ThreadGroup::ClassError() const {
  if (shared_ == nullptr) return "";
  absl::MutexLock l(&shared_->mu);
  return shared_->class_error;
}

bool ThreadGroup::Finished(int i) const { return i < static_cast<int>(joined_.size()) && joined_[i]; }

}  // namespace ghost
