// docs/guide/observability.md: metrics, dumps, traces and logs.
#include <string>
#include <string_view>

#include "check.hpp"
#include "weft/log.hpp"
#include "weft/metrics.hpp"
#include "weft/weft.hpp"

int main() {
  weft::Runtime rt;
  // [trace]
  std::string trace_json;
  rt.start_trace([&](std::string_view json) { trace_json = json; });  // or a file path
  // [trace end]
  rt.block_on([&] {
    // [labels]
    weft::this_fiber::set_label("request", "r-17");  // in dumps and on log lines
    weft::log::write(weft::log::Level::info, "handling the request");
    // [labels end]

    // [dump]
    std::string text = rt.dump();                        // what SIGQUIT prints
    std::string json = rt.dump(weft::DumpFormat::json);  // the same for tools
    // [dump end]
    guide::check(text.find("request=r-17") != std::string::npos, "the label is in the dump");
    guide::check(json.find("\"fibers\"") != std::string::npos, "JSON dump");
  });
  // [metrics]
  double spawned = 0;
  for (const weft::metrics::Metric& m : weft::metrics::snapshot()) {
    if (m.name == "weft_fiber_spawned_total") spawned = m.series.at(0).value;
  }
  std::string page;
  weft::metrics::write_prometheus(page);  // the text format, for a /metrics endpoint
  // [metrics end]
  guide::check(spawned >= 1 && page.find("weft_fiber_spawned_total") != std::string::npos,
               "metrics");
  // [trace_stop]
  weft::TraceSummary summary = rt.stop_trace();  // hands the Chrome trace-event JSON to the sink
  // [trace_stop end]
  guide::check(summary.events > 0 && trace_json.find("traceEvents") != std::string::npos,
               "a trace");
}
