// NCCL is loaded at run time: here it either loads and reports its version, or says why not.
#include <gtest/gtest.h>

#include <regex>

#include "comm/nccl_library.h"
#include "core/error.h"

namespace switchyard::comm {
namespace {

TEST(NcclLibrary, LoadsOrSaysWhy) {
  const std::string reason = NcclLibrary::unavailable_reason();
  if (!reason.empty()) {
    EXPECT_NE(reason.find("libnccl.so.2"), std::string::npos) << reason;
    EXPECT_THROW(NcclLibrary::get(), BackendError);
    return;
  }
  const std::string version = NcclLibrary::get().version();
  EXPECT_TRUE(std::regex_match(version, std::regex(R"(2\.\d+\.\d+)"))) << version;
  nccl::UniqueId id{};
  EXPECT_EQ(NcclLibrary::get().get_unique_id(&id), nccl::kSuccess) << "a unique id needs no GPU";
}

}  // namespace
}  // namespace switchyard::comm
