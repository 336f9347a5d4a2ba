// weft: stackful fibers on an M:N work-stealing runtime. Umbrella header.
#pragma once

#include "weft/channel.hpp"
#include "weft/config.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/fs.hpp"
#include "weft/runtime.hpp"
#include "weft/select.hpp"
#include "weft/sync.hpp"
#include "weft/this_fiber.hpp"
