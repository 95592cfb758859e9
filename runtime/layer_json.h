// A layer's config and forward options from JSON objects with Tutel's field names: what the C API
// (and other bindings) take. Strict: an unknown field or a value of the wrong type is a UserError
// naming it.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/moe_layer.h"

namespace switchyard {

MoeLayerConfig layer_config_from_json(const nlohmann::json& object);
ForwardOptions forward_options_from_json(const nlohmann::json& object);
/// `text` parsed as a JSON object; `what` names it in the error.
nlohmann::json parse_json_object(const std::string& text, const char* what);

}  // namespace switchyard
