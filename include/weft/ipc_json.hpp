// weft::ipc's JSON codec: values of any type with nlohmann-json's
// to_json/from_json travel as JSON text, one frame per value.
//
//   #include "weft/ipc_json.hpp"
//   struct Job { int id; std::string name; };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Job, id, name)
//   auto [tx, rx] = weft::ipc::channel<Job>(std::move(stream));  // JsonCodec<Job>
//
// Apart from weft/ipc.hpp so that the core of weft does not need
// nlohmann-json (nlohmann-json3-dev, header-only): a program that includes
// this header needs it on its include path (CMake: link
// nlohmann_json::nlohmann_json).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "weft/ipc.hpp"

namespace weft::ipc {

/// JSON text (nlohmann-json) for any T with to_json/from_json. encode
/// throws what to_json throws (send() then sends nothing). decode throws
/// nlohmann's parse or type error, which recv() reports as ipc::Error
/// "weft: ipc: cannot decode a frame: <nlohmann's message>" (the frame is
/// consumed). Stateless; safe from any fiber.
template <class T>
struct JsonCodec {
  /// v as compact JSON (nlohmann::json's to_json for T). @throws nlohmann::json::exception.
  static std::string encode(const T& v) { return nlohmann::json(v).dump(); }
  /// b parsed as JSON and converted to T. @throws nlohmann::json::exception on malformed input.
  static T decode(std::string_view b) { return nlohmann::json::parse(b).get<T>(); }
};

}  // namespace weft::ipc
