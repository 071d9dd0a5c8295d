#include "server/scheduler/inline_execution.h"

namespace torii {
namespace {

thread_local InlineBudget* t_budget = nullptr;

}  // namespace

InlineScope::InlineScope(InlineBudget* budget) : saved_(t_budget) { t_budget = budget; }

InlineScope::~InlineScope() { t_budget = saved_; }

InlineBudget* InlineScope::Current() { return t_budget; }

}  // namespace torii
