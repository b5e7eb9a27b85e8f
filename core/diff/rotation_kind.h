// What is done to the leading residual directions before they are reported: the choice alone,
// with no Eigen, for headers such as core/pipeline/project.h that only name it.
#pragma once

#include <string>

namespace modeldiff::core {

enum class Rotation {
  kNone,     // the principal directions (the reference's residual PCA)
  kVarimax,  // varimax of the C directions (core/diff/rotation.h): oblique, sparser loadings
};
// "none", "varimax"; parse_rotation throws InputError for another name (core/diff/model_diff.cpp).
const char* rotation_name(Rotation r);
Rotation parse_rotation(const std::string& name);

}  // namespace modeldiff::core
