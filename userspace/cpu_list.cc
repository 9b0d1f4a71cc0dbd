#include "userspace/cpu_list.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ghost {

CpuList::CpuList(std::initializer_list<int> cpus) {
  for (int c : cpus) Set(c);
}

absl::StatusOr<CpuList> CpuList::Parse(absl::string_view text, int max_cpus) {
  CpuList out;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return absl::InvalidArgumentError("empty CPU list");
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    piece = absl::StripAsciiWhitespace(piece);
    std::pair<absl::string_view, absl::string_view> range =
        absl::StrSplit(piece, absl::MaxSplits('-', 1));
    int lo, hi;
    if (!absl::SimpleAtoi(range.first, &lo) ||
        (piece.find('-') != absl::string_view::npos
             ? !absl::SimpleAtoi(range.second, &hi)
             : (hi = lo, false)) ||
        lo < 0 || hi < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CPU list '", text, "': '", piece, "' is not N or N-M"));
    }
    if (lo > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CPU list '", text, "': range '", piece, "' is reversed"));
    }
    if (hi >= max_cpus) {
      return absl::OutOfRangeError(absl::StrCat("bad CPU list '", text, "': CPU ", hi,
                                                " is out of range (0-", max_cpus - 1, ")"));
    }
    for (int c = lo; c <= hi; c++) out.Set(c);
  }
  return out;
}

CpuList CpuList::FirstN(int n) {
  CpuList out;
  for (int c = 0; c < n && c < GHOST_MAX_CPUS; c++) out.Set(c);
  return out;
}

void CpuList::Set(int cpu) {
  if (cpu >= 0 && cpu < GHOST_MAX_CPUS) bits_.set(cpu);
}
void CpuList::Clear(int cpu) {
  if (cpu >= 0 && cpu < GHOST_MAX_CPUS) bits_.reset(cpu);
}
bool CpuList::IsSet(int cpu) const {
  return cpu >= 0 && cpu < GHOST_MAX_CPUS && bits_.test(cpu);
}

std::vector<int> CpuList::ToVector() const {
  std::vector<int> v;
  for (int c = 0; c < GHOST_MAX_CPUS; c++)
    if (bits_.test(c)) v.push_back(c);
  return v;
}

std::string CpuList::ToString() const {
  std::string s;
  for (int c = 0; c < GHOST_MAX_CPUS; c++) {
    if (!bits_.test(c)) continue;
    int end = c;
    while (end + 1 < GHOST_MAX_CPUS && bits_.test(end + 1)) end++;
    absl::StrAppend(&s, s.empty() ? "" : ",", c);
    if (end > c) absl::StrAppend(&s, "-", end);
    c = end;
  }
  return s;
}

void CpuList::ToMask(__u64 (&words)[GHOST_CPU_MASK_WORDS]) const {
  for (int w = 0; w < GHOST_CPU_MASK_WORDS; w++) words[w] = 0;
  for (int c = 0; c < GHOST_MAX_CPUS; c++)
    if (bits_.test(c)) words[c / 64] |= 1ULL << (c % 64);
}

CpuList CpuList::FromMask(const __u64 (&words)[GHOST_CPU_MASK_WORDS]) {
  CpuList out;
  for (int c = 0; c < GHOST_MAX_CPUS; c++)
    if (words[c / 64] & (1ULL << (c % 64))) out.Set(c);
  return out;
}

}  // namespace ghost
