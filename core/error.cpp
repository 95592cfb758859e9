// The exceptions' key functions: their vtables and typeinfo are emitted here, once, and exported
// by libswitchyard.so, so an application catches them by type across the library boundary.
#include "core/error.h"

namespace switchyard {

Error::~Error() = default;
UserError::~UserError() = default;
BackendError::~BackendError() = default;
CommError::~CommError() = default;
CompileError::~CompileError() = default;
InternalError::~InternalError() = default;

}  // namespace switchyard
