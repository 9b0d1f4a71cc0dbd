#include "userspace/bpf_class.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/ghost_skel.h"
#include "userspace/topology.h"

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

NodeTable ReadNodeTable(const std::string& sysfs_root) {
  NodeTable t;
  absl::StatusOr<Topology> topo = Topology::FromSysfs(sysfs_root);
  // Without a readable topology every CPU is node 0: one ring per enclave,
  // the fast path still works (without NUMA placement).
  if (!topo.ok() || topo->num_nodes() < 1) return t;
  // Nodes are dense (0..n-1). Beyond GHOST_RING_MAX_NODES they are folded:
  // ring k serves nodes k, k + 8, ...; refusing would keep such a machine
  // from loading the class at all, and since agents read this same table
  // (class_info.cpu_node), a thread pushed to ring k still runs only on the
  // CPUs of ring k's nodes. Only locality is coarser.
  t.nr_nodes = static_cast<uint32_t>(std::min(topo->num_nodes(), GHOST_RING_MAX_NODES));
  for (int c = 0; c < topo->num_cpus() && c < GHOST_MAX_CPUS; c++) {
    t.cpu_node[c] = static_cast<uint8_t>(topo->numa_node(c) % GHOST_RING_MAX_NODES);
  }
  return t;
}

absl::StatusOr<std::unique_ptr<BpfClass>> BpfClass::Load(const ClassOptions& opts) {
  if (opts.slice <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("slice must be positive");
  }
  // Below 2 s the kernel's ext deadline server could be too late to lend a
  // CPU that a higher class holds to a thread waiting there (docs/FALLBACK.md).
  if (opts.kernel_timeout < kMinKernelTimeout || opts.kernel_timeout > absl::Seconds(30)) {
    return absl::InvalidArgumentError("kernel timeout must be within 2s..30s");
  }
  struct ghost_bpf* skel = ghost_bpf__open();
  if (skel == nullptr) {
    return absl::InternalError(absl::StrCat("opening the BPF object: ", strerror(errno)));
  }
  skel->rodata->slice_ns = absl::ToInt64Nanoseconds(opts.slice);
  skel->rodata->race_window_iters = opts.race_window_iters;
  skel->struct_ops.ghost_ops->timeout_ms =
      static_cast<__u32>(absl::ToInt64Milliseconds(opts.kernel_timeout));
  // The class caps enclave watchdogs below it (enclaves.bpf.h).
  skel->rodata->kernel_timeout_ms = skel->struct_ops.ghost_ops->timeout_ms;
  // The fast path's CPU -> node table (fast_path.bpf.h).
  const NodeTable nodes = ReadNodeTable(opts.sysfs_root);
  skel->rodata->nr_nodes = nodes.nr_nodes;
  for (int c = 0; c < GHOST_MAX_CPUS; c++) skel->rodata->cpu_node[c] = nodes.cpu_node[c];
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

ClassProbe ProbeClass(const ClassPins& pins, const SchedExtPaths& paths) {
  ClassProbe probe;
  probe.link_pinned = access(pins.Link().c_str(), F_OK) == 0;
  if (probe.link_pinned) {
    int fd = bpf_obj_get(pins.Link().c_str());
    if (fd >= 0) {
      struct bpf_link_info info;
      memset(&info, 0, sizeof(info));
      __u32 len = sizeof(info);
      // A detached struct_ops link no longer names its map.
      probe.link_live = bpf_link_get_info_by_fd(fd, &info, &len) == 0 &&
                        info.type == BPF_LINK_TYPE_STRUCT_OPS && info.struct_ops.map_id != 0;
      close(fd);
    }
  }
  if (absl::StatusOr<std::string> st = SchedExtState(paths); st.ok()) probe.state = *st;
  std::ifstream f(paths.root + "/root/ops");
  if (f) std::getline(f, probe.ops);
  return probe;
}

void BpfClass::RemoveStalePins(const ClassPins& pins) {
  if (DIR* d = opendir(pins.MapsDir().c_str())) {
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    }
    closedir(d);
    for (const std::string& n : names) unlink(absl::StrCat(pins.MapsDir(), "/", n).c_str());
  }
  rmdir(pins.MapsDir().c_str());
  unlink(pins.Enroll().c_str());
  unlink(pins.Link().c_str());
  rmdir(pins.dir.c_str());
}

namespace {

bool MapInfo(int fd, struct bpf_map_info* info) {
  memset(info, 0, sizeof(*info));
  __u32 len = sizeof(*info);
  return bpf_map_get_info_by_fd(fd, info, &len) == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpfClass>> BpfClass::Reattach(const ClassPins& pins) {
  // Pins someone else could have replaced are not the class we pinned.
  for (const std::string& dir : {pins.dir, pins.MapsDir()}) {
    if (absl::Status s = CheckPinDir(dir); !s.ok()) {
      return absl::PermissionDeniedError(std::string(s.message()));
    }
  }
  // The version first, from the pinned class_info alone: an agent of another
  // ABI must not even open the maps with its own layouts.
  {
    std::string path = pins.Map("class_info");
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      return absl::NotFoundError(absl::StrCat("a ghost class is pinned at ", pins.dir, " but ",
                                              path, " is missing: ", strerror(errno)));
    }
    struct bpf_map_info info;
    std::vector<char> value;
    __u32 zero = 0;
    bool read = MapInfo(fd, &info) && info.value_size >= sizeof(__u32);
    if (read) {
      value.resize(info.value_size);
      read = bpf_map_lookup_elem(fd, &zero, value.data()) == 0;
    }
    close(fd);
    if (!read) return absl::InternalError(absl::StrCat("cannot read ", path));
    __u32 version;
    memcpy(&version, value.data(), sizeof(version));  // abi_version leads every ABI's class_info
    if (absl::Status s = CheckClassAbi(version, GHOST_ABI_VERSION); !s.ok()) return s;
  }
  struct ghost_bpf* skel = ghost_bpf__open();
  if (skel == nullptr) {
    return absl::InternalError(absl::StrCat("opening the BPF object: ", strerror(errno)));
  }
  std::unique_ptr<BpfClass> cls(new BpfClass(skel));
  struct bpf_map* map;
  bpf_object__for_each_map(map, skel->obj) {
    if (bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS) {
      // The running class's ops stay; a second struct_ops is never loaded.
      bpf_map__set_autocreate(map, false);
      continue;
    }
    std::string path = pins.Map(bpf_map__name(map));
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      return absl::NotFoundError(
          absl::StrCat("the pinned class lacks ", path, ": ", strerror(errno)));
    }
    // The ABI version does not cover the class's private maps (.bss and
    // friends): an agent built from other sources must not read them with
    // its own offsets.
    struct bpf_map_info info;
    if (!MapInfo(fd, &info) || info.type != static_cast<__u32>(bpf_map__type(map)) ||
        info.key_size != bpf_map__key_size(map) || info.value_size != bpf_map__value_size(map) ||
        info.max_entries != bpf_map__max_entries(map)) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrFormat(
          "the class pinned at %s was built from other sources than this agent (map %s: "
          "value size %u, here %u); stop its agent with SIGTERM or remove %s first",
          pins.dir, bpf_map__name(map), info.value_size, bpf_map__value_size(map), pins.dir));
    }
    int err = bpf_map__reuse_fd(map, fd);
    close(fd);  // reuse_fd keeps its own duplicate
    if (err != 0) {
      return absl::InternalError(
          absl::StrCat("reusing pinned map ", path, ": ", strerror(-err)));
    }
  }
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    if (bpf_program__type(prog) == BPF_PROG_TYPE_STRUCT_OPS) bpf_program__set_autoload(prog, false);
  }
  // Loads the syscall programs (commit, ctl) against the shared maps; the
  // global-data maps are reused as they are (not re-initialised) and mmapped.
  if (int err = ghost_bpf__load(skel); err != 0) {
    return absl::InternalError(
        absl::StrCat("loading the syscall programs against the pinned class: ", strerror(-err)));
  }
  cls->link_fd_ = bpf_obj_get(pins.Link().c_str());
  if (cls->link_fd_ < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open the pinned link ", pins.Link(), ": ", strerror(errno)));
  }
  cls->reattached_ = true;
  cls->pins_ = pins;
  return cls;
}

absl::Status BpfClass::Attach() {
  if (link_fd_ >= 0) return absl::OkStatus();
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
  link_fd_ = bpf_link__fd(link_);
  return absl::OkStatus();
}

absl::Status CheckPinDir(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot use ", dir, ": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a directory (a symlink?): refusing to use it for the class"));
  }
  if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s belongs to uid %d with mode %04o: the class's pins must be ours and writable by no "
        "one else; remove it",
        dir, st.st_uid, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

absl::Status BpfClass::Pin(const ClassPins& pins) {
  if (link_fd_ < 0) return absl::FailedPreconditionError("pinning a class that is not attached");
  auto fail = [&](const std::string& what, int err) {
    pins_ = pins;
    Unpin();
    return absl::InternalError(absl::StrCat(
        "cannot pin ", what, " (is ", pins.dir, " on bpffs, mounted at /sys/fs/bpf?): ",
        strerror(err)));
  };
  // Root's alone: whoever can open a pin can read every thread's status,
  // write transactions, or enrol threads in an enclave. Modes are set
  // explicitly, whatever the umask; a directory someone else made (bpffs's
  // root is world-writable) is refused, never used.
  for (const std::string& dir : {pins.dir, pins.MapsDir()}) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail(dir, errno);
    if (absl::Status s = CheckPinDir(dir); !s.ok()) return s;
    if (chmod(dir.c_str(), kPinDirMode) != 0) return fail(dir, errno);
  }
  auto pin = [&](int fd, const std::string& path) {
    unlink(path.c_str());
    if (bpf_obj_pin(fd, path.c_str()) != 0 || chmod(path.c_str(), kPinFileMode) != 0) {
      return fail(path, errno);
    }
    return absl::OkStatus();
  };
  struct bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) {
    if (bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS) continue;
    if (absl::Status s = pin(bpf_map__fd(map), pins.Map(bpf_map__name(map))); !s.ok()) return s;
  }
  if (absl::Status s = pin(bpf_map__fd(skel_->maps.enroll), pins.Enroll()); !s.ok()) return s;
  // The link last: a successor takes a pinned link as "a class runs here".
  if (absl::Status s = pin(link_fd_, pins.Link()); !s.ok()) return s;
  pins_ = pins;
  return absl::OkStatus();
}

void BpfClass::Unpin() {
  if (pins_.dir.empty()) return;
  // The link first, so nobody re-attaches to a class being unloaded.
  unlink(pins_.Link().c_str());
  unlink(pins_.Enroll().c_str());
  struct bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) {
    if (bpf_map__type(map) != BPF_MAP_TYPE_STRUCT_OPS) {
      unlink(pins_.Map(bpf_map__name(map)).c_str());
    }
  }
  rmdir(pins_.MapsDir().c_str());
  rmdir(pins_.dir.c_str());
  pins_ = ClassPins{};
}

void BpfClass::Detach() {
  if (released_ || link_fd_ < 0) return;
  Unpin();
  // Detach explicitly: another process (a ghost-run, a dying agent's
  // successor) may still hold a reference to the link.
  bpf_link_detach(link_fd_);
  if (link_ != nullptr) {
    bpf_link__destroy(link_);
    link_ = nullptr;
  } else {
    close(link_fd_);
  }
  link_fd_ = -1;
}

void BpfClass::Release() {
  if (released_ || link_fd_ < 0) return;
  released_ = true;
  if (link_ != nullptr) {
    bpf_link__disconnect(link_);  // destroying it must not detach the class
    bpf_link__destroy(link_);
    link_ = nullptr;
  }
  close(link_fd_);  // the pin keeps the link
  link_fd_ = -1;
}

absl::Status BpfClass::Health() const {
  const ghost_exit_record& rec = skel_->bss->exit_record;
  int kind = __atomic_load_n(&rec.kind, __ATOMIC_ACQUIRE);
  if (kind == 0) return absl::OkStatus();
  return absl::AbortedError(absl::StrFormat("the kernel ended the class (%s, kind %d): %s%s%s",
                                            ExitKindName(kind), kind, rec.reason,
                                            rec.msg[0] ? ": " : "", rec.msg));
}

std::string BpfClass::ExitDump() const {
  if (__atomic_load_n(&skel_->bss->exit_record.kind, __ATOMIC_ACQUIRE) == 0) return "";
  const char* d = skel_->bss->exit_dump;
  return std::string(d, strnlen(d, sizeof(skel_->bss->exit_dump)));
}

}  // namespace ghost
