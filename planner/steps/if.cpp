// The `if` block: runs `then` or `else` depending on a condition.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<IfBlock> Parse(StepArgs& args) {
  REPRISE_RETURN_IF_ERROR(args.Load("if", {"condition", "then", "else"}));
  if (!args.Has("condition")) return args.Missing("condition", "if");
  if (!args.Has("then")) return args.Missing("then", "if");
  StepArgs condition = args.Get("condition");
  REPRISE_ASSIGN_OR_RETURN(std::string text, condition.String("'condition' in if"));
  auto expr = ParseExpression(text);
  if (!expr.ok()) return condition.Error("'condition' in if: " + expr.status().message());
  IfBlock b;
  b.condition = std::move(expr).value();
  int counter = 0;  // then and else are numbered in one sequence
  REPRISE_ASSIGN_OR_RETURN(b.then_steps, args.Children("then", "if", &counter));
  if (args.Has("else")) {
    REPRISE_ASSIGN_OR_RETURN(b.else_steps, args.Children("else", "if", &counter));
  }
  return b;
}

Flow Run(Walker& w, const Step& step, const IfBlock& block, Frame& f) {
  auto value = block.condition.Evaluate(w.Lookup(f, w.SoleTarget(f)));
  const std::string& cond = block.condition.text();
  if (w.dry()) {
    if (!value.ok()) {
      w.Problem(step, value.status().message());
      w.AddPlanned(step, f, nullptr, "if " + cond + ": " + value.status().message());
      return Flow::Ok();
    }
    if (!value->has_value()) {
      w.AddPlanned(step, f, nullptr, "if " + cond + ": known at run time, both branches shown");
      w.WalkConditional(block.then_steps, f, "only if " + cond + " (known at run time)");
      w.WalkConditional(block.else_steps, f, "only unless " + cond + " (known at run time)");
      return Flow::Ok();
    }
    bool taken = **value;
    w.AddPlanned(step, f, nullptr,
                 "if " + cond + ": " + (taken ? "true, runs 'then'" : "false, runs 'else'"));
    return w.RunNested(taken ? block.then_steps : block.else_steps, f);
  }
  TimePoint started = w.clock().Now();
  if (!value.ok()) return w.RecordFailure(step, value.status().message(), f, started);
  bool taken = **value;
  w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo,
            "if " + cond + ": " + (taken ? "true" : "false"));
  return w.RunNested(taken ? block.then_steps : block.else_steps, f);
}

}  // namespace

StepKindInfo IfKind() { return MakeStepKind("if", /*is_block=*/true, Parse, Run); }

}  // namespace reprise
