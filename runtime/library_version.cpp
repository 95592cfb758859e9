// The shared library's own object: what it was built as, for `strings libswitchyard.so`.
#include <switchyard/version.h>

namespace switchyard {

extern const char kLibraryIdent[];
const char kLibraryIdent[] = "switchyard " SWITCHYARD_VERSION_STRING;

}  // namespace switchyard
