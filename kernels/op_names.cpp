// op_names.cpp: OpId <-> name, shared by every backend.
#include <cstring>

#include "ops.h"

namespace lb {

static const char* const kOpNames[] = {
#define LB_OP_NAME(name) #name,
    LB_FOR_EACH_OP(LB_OP_NAME)
#undef LB_OP_NAME
};

const char* op_name(OpId op) {
  const int i = (int)op;
  return i >= 0 && i < (int)OpId::count_ ? kOpNames[i] : "?";
}

bool op_from_name(const char* name, OpId* out) {
  for (int i = 0; i < (int)OpId::count_; i++)
    if (std::strcmp(kOpNames[i], name) == 0) {
      *out = (OpId)i;
      return true;
    }
  return false;
}

}  // namespace lb
