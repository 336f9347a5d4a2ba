// weft: stackful fibers on an M:N work-stealing runtime. Umbrella header.
// weft/signal.hpp is not included: its namespace weft::signal would make an
// unqualified signal(...) ambiguous under `using namespace weft`.
#pragma once

#include "weft/cancel.hpp"
#include "weft/channel.hpp"
#include "weft/config.hpp"
#include "weft/deadline.hpp"
#include "weft/errors.hpp"
#include "weft/fd.hpp"
#include "weft/fiber.hpp"
#include "weft/fls.hpp"
#include "weft/fs.hpp"
#include "weft/generator.hpp"
#include "weft/net.hpp"
#include "weft/parallel.hpp"
#include "weft/process.hpp"
#include "weft/quota.hpp"
#include "weft/runtime.hpp"
#include "weft/scope.hpp"
#include "weft/select.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"
