// ghost-run: runs a command (and every thread and child it makes) as SCHED_EXT
// threads in an enclave of the running ghost class, or moves an existing
// process there with --pid. Its affinity is narrowed to the enclave's CPUs
// (ConfineToCpus), so the enclave's threads stay off other enclaves' CPUs.
//
//   ghost-run [--enclave=N] -- CMD [ARGS...]
//   ghost-run [--enclave=N] --pid=PID
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"

ABSL_FLAG(int, enclave, -1,
          "Enclave the threads join (0..7); one no agent runs is an error. -1 (the default): "
          "enclave 0, or the class's own FIFO if no agent runs enclave 0.");
ABSL_FLAG(int, pid, 0, "Move this existing process (all its threads) instead of running a command.");
ABSL_FLAG(std::string, pin_dir, ghost::kDefaultPinDir,
          "Where the running ghost-agent pinned the class's maps.");

namespace {

int Fail(int code, const std::string& msg) {
  absl::FPrintF(stderr, "ghost-run: %s\n", msg);
  return code;
}

// execvp's search, done before anything is enrolled so a missing program
// fails cleanly.
bool FindProgram(const std::string& cmd, std::string* why) {
  auto executable = [](const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
  };
  if (cmd.find('/') != std::string::npos) {
    if (executable(cmd)) return true;
    *why = access(cmd.c_str(), F_OK) == 0 ? "not an executable file" : "no such file";
    return false;
  }
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/bin:/usr/bin", ':')) {
    if (executable(absl::StrCat(dir.empty() ? "." : dir, "/", cmd))) return true;
  }
  *why = "not found in PATH";
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> cmd = ghost::ParseFlagsOrExit(
      argc, argv,
      "usage: ghost-run [--enclave=N] -- CMD [ARGS...]\n"
      "       ghost-run [--enclave=N] --pid=PID\n"
      "Runs CMD (or moves process PID) as SCHED_EXT threads in a ghost enclave.");
  const bool enclave_named = absl::GetFlag(FLAGS_enclave) != -1;
  const int enclave = enclave_named ? absl::GetFlag(FLAGS_enclave) : 0;
  const int pid = absl::GetFlag(FLAGS_pid);
  if (enclave < 0 || enclave >= GHOST_MAX_ENCLAVES) {
    return Fail(2, absl::StrFormat("--enclave=%d is out of range (0..%d)", enclave,
                                   GHOST_MAX_ENCLAVES - 1));
  }
  if (pid < 0) return Fail(2, absl::StrFormat("--pid=%d is not a process id", pid));
  if (pid > 0 && !cmd.empty()) return Fail(2, "give either --pid or a command, not both");
  if (pid == 0 && cmd.empty()) return Fail(2, "no command (usage: ghost-run -- CMD [ARGS...])");
  std::string why;
  if (pid == 0 && !FindProgram(cmd[0], &why)) {
    return Fail(2, absl::StrFormat("cannot run '%s': %s", cmd[0], why));
  }
  if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
    return Fail(2, absl::StrFormat("no process %d", pid));
  }

  absl::StatusOr<ghost::Enrollment> enrollment = ghost::Enrollment::Open(absl::GetFlag(FLAGS_pin_dir));
  if (!enrollment.ok()) return Fail(2, std::string(enrollment.status().message()));
  absl::StatusOr<ghost::CpuList> cpus = enrollment->EnclaveCpus(enclave);
  if (!cpus.ok() && absl::IsNotFound(cpus.status()) && !enclave_named) {
    // No agent runs the default enclave (ghost-agent --policy=none): the
    // threads run in the class's own FIFO, on any CPU, as they always did.
    absl::FPrintF(stderr, "ghost-run: no agent runs enclave %d: the threads run in the "
                          "class's FIFO\n", enclave);
    cpus = ghost::CpuList::FirstN(GHOST_MAX_CPUS);
  }
  if (!cpus.ok()) return Fail(2, std::string(cpus.status().message()));

  if (pid > 0) {
    absl::StatusOr<int> n = ghost::MoveProcess(*enrollment, pid, enclave, *cpus);
    if (!n.ok()) return Fail(1, std::string(n.status().message()));
    absl::PrintF("ghost-run: moved %d threads of process %d into enclave %d\n", *n, pid, enclave);
    return 0;
  }

  if (absl::Status s = enrollment->Enroll(getpid(), enclave); !s.ok()) {
    return Fail(1, std::string(s.message()));
  }
  ghost::ConfineToCpus(0, *cpus);  // the command and everything it starts
  sched_param p = {.sched_priority = 0};
  if (sched_setscheduler(0, ghost::kSchedExt, &p) != 0) {
    return Fail(1, absl::StrFormat("switching to SCHED_EXT: %s", strerror(errno)));
  }
  std::vector<char*> args;
  for (std::string& a : cmd) args.push_back(a.data());
  args.push_back(nullptr);
  execvp(args[0], args.data());
  return Fail(2, absl::StrFormat("cannot run '%s': %s", cmd[0], strerror(errno)));
}
