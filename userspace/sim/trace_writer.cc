#include "userspace/sim/trace_writer.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ghost {
namespace sim {

absl::StatusOr<std::unique_ptr<TraceWriter>> TraceWriter::Open(const std::string& path,
                                                               int num_cpus) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write trace '", path, "': ", strerror(errno)));
  }
  std::unique_ptr<TraceWriter> w(new TraceWriter(f));
  fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
  fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":{\"name\":\"ghost-sim\"}}", f);
  for (int c = 0; c < num_cpus; c++) {
    fprintf(f,
            ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,"
            "\"args\":{\"name\":\"CPU %d\"}}",
            c, c);
    fprintf(f, ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,"
               "\"args\":{\"sort_index\":%d}}", c, c);
  }
  w->first_ = false;
  return w;
}

TraceWriter::~TraceWriter() {
  if (f_ != nullptr) fclose(f_);
}

void TraceWriter::Slice(int cpu, Occupant occ, int thread, uint64_t start_ns,
                        uint64_t end_ns) {
  if (occ == kIdle || end_ns <= start_ns) return;
  // Microseconds with ns precision, printed from integers (byte-identical runs).
  const uint64_t dur = end_ns - start_ns;
  char name[32];
  switch (occ) {
    case kThread: snprintf(name, sizeof(name), "tid %d", thread + 1); break;
    case kCfs: snprintf(name, sizeof(name), "CFS"); break;
    default: snprintf(name, sizeof(name), "agent"); break;
  }
  fprintf(f_,
          "%s\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":0,\"tid\":%d,"
          "\"ts\":%llu.%03llu,\"dur\":%llu.%03llu}",
          first_ ? "" : ",", name,
          occ == kThread ? "ghost" : occ == kCfs ? "cfs" : "agent", cpu,
          static_cast<unsigned long long>(start_ns / 1000),
          static_cast<unsigned long long>(start_ns % 1000),
          static_cast<unsigned long long>(dur / 1000),
          static_cast<unsigned long long>(dur % 1000));
  first_ = false;
}

absl::Status TraceWriter::Close() {
  if (f_ == nullptr) return absl::OkStatus();
  fputs("\n]}\n", f_);
  const bool bad = ferror(f_) != 0;
  const int rc = fclose(f_);
  f_ = nullptr;
  if (bad || rc != 0) return absl::InternalError("writing the trace failed");
  return absl::OkStatus();
}

}  // namespace sim
}  // namespace ghost
