// weft::Selector::wait: select_impl over the cases added at run time.
#include "weft/selector.hpp"

#include <vector>

namespace weft {

std::size_t Selector::wait() {
  if (cases_.empty()) throw std::logic_error("weft: Selector::wait() without cases");
  std::vector<detail::SelectOp> ops;
  std::vector<std::size_t> op_case;  // op index -> case index
  ops.reserve(cases_.size());
  op_case.reserve(cases_.size());
  std::int64_t deadline_ns = detail::kNoDeadline;
  std::size_t deadline_case = kNone;
  for (std::size_t i = 0; i < cases_.size(); ++i) {
    Case& c = *cases_[i];
    if (c.is_op()) {
      ops.emplace_back();
      c.fill(ops.back());
      op_case.push_back(i);
    } else if (i != default_ && !c.deadline.is_none()) {
      // The earliest deadline counts; the first added wins a tie.
      if (deadline_case == kNone || c.deadline.ns() < deadline_ns) {
        deadline_ns = c.deadline.ns();
        deadline_case = i;
      }
    }
  }
  const std::size_t n = ops.size();
  const std::size_t r = detail::select_impl(ops.data(), n, default_ != kNone, deadline_ns);
  if (r == select_all_closed) return r;
  std::size_t fired;
  if (r < n) {
    fired = op_case[r];
    cases_[fired]->fire(ops[r]);
  } else {
    fired = r == n ? default_ : deadline_case;
    cases_[fired]->fire(detail::SelectOp{});
  }
  return fired;
}

}  // namespace weft
