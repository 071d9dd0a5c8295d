// Catch2's main, in a translation unit of its own (it compiles slowly).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
