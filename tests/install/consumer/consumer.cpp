// A C++ program using an installed weft: the C++ API, and weft.h from C++.
#include <weft/weft.h>

#include <cstdio>
#include <weft/weft.hpp>

int main() {
  weft::Runtime rt;
  const int sum = rt.block_on([] {
    auto [tx, rx] = weft::channel<int>(0);
    auto h = weft::spawn([tx = std::move(tx)] {
      for (int i = 1; i <= 10; ++i) (void)tx.send(i);
    });
    int s = 0;
    for (int v : rx) s += v;
    h.join();
    return s;
  });
  std::printf("consumer_cpp: weft %s, sum %d\n", weft_version_string(), sum);
  return sum == 55 ? 0 : 1;
}
