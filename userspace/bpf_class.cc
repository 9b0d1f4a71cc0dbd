#include "userspace/bpf_class.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/ghost_skel.h"

namespace ghost {
namespace {

const char* ExitKindName(int kind) {
  switch (kind) {
    case 1: return "done";
    case 64: return "unregistered";
    case 65: return "unregistered by BPF";
    case 66: return "unregistered by the kernel";
    case 67: return "sysrq";
    case 1024: return "error";
    case 1025: return "BPF error";
    case 1026: return "runnable task stall";
    default: return "exit";
  }
}

}  // namespace

absl::Status CheckSchedExtHost(const SchedExtPaths& paths) {
  if (access((paths.root + "/state").c_str(), R_OK) != 0) {
    struct utsname u;
    uname(&u);
    return absl::FailedPreconditionError(absl::StrCat(
        "this kernel (", u.release,
        ") has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set); run `make demo` "
        "to try ghost-scx in a VM with a sched_ext kernel"));
  }
  if (geteuid() != 0) {
    return absl::FailedPreconditionError(
        "must run as root: loading a sched_ext class needs CAP_BPF and CAP_SYS_ADMIN");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SchedExtState(const SchedExtPaths& paths) {
  std::ifstream f(paths.root + "/state");
  if (!f) return absl::NotFoundError(absl::StrCat("cannot read ", paths.root, "/state"));
  std::stringstream ss;
  ss << f.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

absl::StatusOr<std::unique_ptr<BpfClass>> BpfClass::Load(const ClassOptions& opts) {
  if (opts.slice <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("slice must be positive");
  }
  if (opts.kernel_timeout < absl::Milliseconds(100) || opts.kernel_timeout > absl::Seconds(30)) {
    return absl::InvalidArgumentError("kernel timeout must be within 100ms..30s");
  }
  struct ghost_bpf* skel = ghost_bpf__open();
  if (skel == nullptr) {
    return absl::InternalError(absl::StrCat("opening the BPF object: ", strerror(errno)));
  }
  skel->rodata->slice_ns = absl::ToInt64Nanoseconds(opts.slice);
  skel->rodata->race_window_iters = opts.race_window_iters;
  skel->struct_ops.ghost_ops->timeout_ms =
      static_cast<__u32>(absl::ToInt64Milliseconds(opts.kernel_timeout));
  if (int err = ghost_bpf__load(skel); err != 0) {
    ghost_bpf__destroy(skel);
    return absl::InternalError(absl::StrCat("loading the BPF class (verifier): ", strerror(-err)));
  }
  return std::unique_ptr<BpfClass>(new BpfClass(skel));
}

BpfClass::~BpfClass() {
  Detach();
  ghost_bpf__destroy(skel_);
}

absl::Status BpfClass::Attach() {
  if (link_ != nullptr) return absl::OkStatus();
  link_ = bpf_map__attach_struct_ops(skel_->maps.ghost_ops);
  if (link_ == nullptr) {
    int err = errno;
    if (err == EBUSY || err == EEXIST) {
      std::string ops = "another scheduler";
      std::ifstream f("/sys/kernel/sched_ext/root/ops");
      if (f && std::getline(f, ops)) ops = absl::StrCat("'", ops, "'");
      return absl::AlreadyExistsError(
          absl::StrCat("a sched_ext class is already loaded (", ops, "); unload it first"));
    }
    return absl::InternalError(absl::StrCat("attaching the class: ", strerror(err)));
  }
  return absl::OkStatus();
}

void BpfClass::Detach() {
  if (link_ == nullptr) return;
  bpf_link__destroy(link_);
  link_ = nullptr;
}

absl::Status BpfClass::Health() const {
  const ghost_exit_record& rec = skel_->bss->exit_record;
  int kind = __atomic_load_n(&rec.kind, __ATOMIC_ACQUIRE);
  if (kind == 0) return absl::OkStatus();
  return absl::AbortedError(absl::StrFormat("the kernel ended the class (%s, kind %d): %s%s%s",
                                            ExitKindName(kind), kind, rec.reason,
                                            rec.msg[0] ? ": " : "", rec.msg));
}

}  // namespace ghost
