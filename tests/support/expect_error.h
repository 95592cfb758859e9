// Asserting that a call fails with a UserError whose message says what was wrong.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace switchyard::testing {

/// `call()` throws a UserError whose message contains `fragment`.
template <typename Call>
void expect_user_error(Call&& call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "no UserError; expected one saying '" << fragment << "'";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace switchyard::testing
