// weft: stackful fibers on an M:N work-stealing runtime. Umbrella header.
#pragma once

#include "weft/config.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/runtime.hpp"
#include "weft/this_fiber.hpp"
