#include "planner/expression.h"

#include <algorithm>
#include <cctype>

namespace reprise {

struct Expression::Node {
  enum class Kind { kLiteral, kTemplate, kVariable, kList, kNot, kAnd, kOr, kEq, kNe, kIn };
  Kind kind;
  std::string text;  // literal text, template text or variable name
  std::vector<std::shared_ptr<const Node>> children;
};

std::optional<bool> ParseBoolWord(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "yes" || lower == "1") return true;
  if (lower == "false" || lower == "no" || lower == "0") return false;
  return std::nullopt;
}

namespace {

using Node = Expression::Node;
using NodePtr = std::shared_ptr<const Node>;

NodePtr Make(Node::Kind kind, std::string text = {}, std::vector<NodePtr> children = {}) {
  return std::make_shared<const Node>(Node{kind, std::move(text), std::move(children)});
}

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == '/' || c == ':';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<NodePtr> ParseAll() {
    if (Peek() == '\0') return Fail("empty expression");
    auto node = ParseOr();
    if (!node.ok()) return node;
    SkipSpace();
    if (pos_ < text_.size()) return Fail("unexpected '" + std::string(1, text_[pos_]) + "'");
    return node;
  }

 private:
  Status Fail(std::string message) const {
    return InvalidArgument(message + " at offset " + std::to_string(pos_) + " in expression \"" +
                           std::string(text_) + "\"");
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  char Peek() {
    SkipSpace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  bool Accept(std::string_view token) {
    SkipSpace();
    if (text_.substr(pos_, token.size()) == token) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  // `in` as a keyword, not the start of a word like "index".
  bool AcceptKeyword(std::string_view word) {
    SkipSpace();
    if (text_.substr(pos_, word.size()) != word) return false;
    size_t end = pos_ + word.size();
    if (end < text_.size() && IsWordChar(text_[end])) return false;
    pos_ = end;
    return true;
  }

  // && binds tighter than ||; both group to the left.
  Result<NodePtr> ParseOr() { return ParseChain("||", Node::Kind::kOr, &Parser::ParseAnd); }
  Result<NodePtr> ParseAnd() { return ParseChain("&&", Node::Kind::kAnd, &Parser::ParseUnary); }
  // operand (op operand)*, each operand parsed by `operand`.
  Result<NodePtr> ParseChain(std::string_view op, Node::Kind kind,
                             Result<NodePtr> (Parser::*operand)()) {
    auto left = (this->*operand)();
    if (!left.ok()) return left;
    NodePtr node = *left;
    while (Accept(op)) {
      auto right = (this->*operand)();
      if (!right.ok()) return right;
      node = Make(kind, {}, {node, *right});
    }
    return node;
  }
  Result<NodePtr> ParseUnary() {
    if (++depth_ > 64) return Fail("expression nested too deeply");
    struct DepthGuard {
      int& d;
      ~DepthGuard() { --d; }
    } guard{depth_};
    SkipSpace();
    if (Peek() == '!' && text_.substr(pos_, 2) != "!=") {
      ++pos_;
      auto inner = ParseUnary();
      if (!inner.ok()) return inner;
      return Make(Node::Kind::kNot, {}, {*inner});
    }
    return ParseCompare();
  }
  Result<NodePtr> ParseCompare() {
    auto left = ParsePrimary();
    if (!left.ok()) return left;
    if (Accept("==") || Accept("!=")) {
      bool equal = text_[pos_ - 2] == '=';
      auto right = ParsePrimary();
      if (!right.ok()) return right;
      return Make(equal ? Node::Kind::kEq : Node::Kind::kNe, {}, {*left, *right});
    }
    if (AcceptKeyword("in")) {
      auto list = ParseList();
      if (!list.ok()) return list;
      return Make(Node::Kind::kIn, {}, {*left, *list});
    }
    return left;
  }
  Result<NodePtr> ParseList() {
    if (!Accept("[")) return Fail("expected '[' after 'in'");
    std::vector<NodePtr> items;
    if (Accept("]")) return Make(Node::Kind::kList, {}, std::move(items));
    while (true) {
      auto item = ParsePrimary();
      if (!item.ok()) return item;
      items.push_back(*item);
      if (Accept("]")) break;
      if (!Accept(",")) return Fail("expected ',' or ']' in list");
    }
    return Make(Node::Kind::kList, {}, std::move(items));
  }
  Result<NodePtr> ParsePrimary() {
    char c = Peek();
    if (c == '\0') return Fail("unexpected end of expression");
    if (c == '(') {
      ++pos_;
      if (++depth_ > 64) return Fail("expression nested too deeply");
      auto inner = ParseOr();
      --depth_;
      if (!inner.ok()) return inner;
      if (!Accept(")")) return Fail("expected ')'");
      return inner;
    }
    if (c == '$') {
      size_t start = pos_++;
      std::string name;
      if (pos_ < text_.size() && text_[pos_] == '{') {
        size_t close = text_.find('}', pos_);
        if (close == std::string_view::npos) {
          pos_ = start;
          return Fail("unterminated \"${\"");
        }
        name = std::string(text_.substr(pos_ + 1, close - pos_ - 1));
        pos_ = close + 1;
      } else {
        size_t end = pos_;
        while (end < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_'))
          ++end;
        name = std::string(text_.substr(pos_, end - pos_));
        pos_ = end;
      }
      if (!IsValidVariableName(name)) {
        pos_ = start;
        return Fail("expected a variable name after '$'");
      }
      return Make(Node::Kind::kVariable, name);
    }
    if (c == '"' || c == '\'') {
      size_t start = pos_++;
      size_t close = text_.find(c, pos_);
      if (close == std::string_view::npos) {
        pos_ = start;
        return Fail("unterminated string");
      }
      std::string body(text_.substr(pos_, close - pos_));
      pos_ = close + 1;
      if (c == '\'') return Make(Node::Kind::kLiteral, body);
      auto refs = ReferencedVariables(body);  // validate now, expand later
      if (!refs.ok()) {
        pos_ = start;
        return Fail("bad string: " + refs.status().message());
      }
      return Make(Node::Kind::kTemplate, body);
    }
    if (IsWordChar(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
      std::string word(text_.substr(start, pos_ - start));
      if (word == "in") {
        pos_ = start;
        return Fail("expected a value before 'in'");
      }
      return Make(Node::Kind::kLiteral, word);
    }
    return Fail("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// A value, or nullopt when unknown (dry run).
using Value = std::optional<std::string>;

class Evaluator {
 public:
  Evaluator(const VariableLookup& lookup, const std::string& text) : lookup_(lookup), text_(text) {}

  Result<Value> Eval(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kLiteral:
        return Value(n.text);
      case Node::Kind::kTemplate: {
        bool unknown = false;
        auto expanded = ExpandVariables(n.text, lookup_, &unknown);
        if (!expanded.ok()) return expanded.status();
        if (unknown) return Value();
        return Value(*expanded);
      }
      case Node::Kind::kVariable:
        return lookup_(n.text);
      case Node::Kind::kList:
        return Status(InvalidArgument("a list may only follow 'in' in \"" + text_ + "\""));
      case Node::Kind::kNot: {
        auto b = Bool(*n.children[0]);
        if (!b.ok()) return b.status();
        if (!b->has_value()) return Value();
        return FromBool(!**b);
      }
      case Node::Kind::kAnd:
      case Node::Kind::kOr: {
        bool is_and = n.kind == Node::Kind::kAnd;
        auto left = Bool(*n.children[0]);
        if (!left.ok()) return left.status();
        // Short-circuit: the right side is not evaluated (nor need be defined).
        if (left->has_value() && **left != is_and) return FromBool(**left);
        auto right = Bool(*n.children[1]);
        if (!right.ok()) return right.status();
        if (right->has_value() && **right != is_and) return FromBool(**right);
        if (!left->has_value() || !right->has_value()) return Value();
        return FromBool(is_and);
      }
      case Node::Kind::kEq:
      case Node::Kind::kNe: {
        auto left = Eval(*n.children[0]);
        if (!left.ok()) return left;
        auto right = Eval(*n.children[1]);
        if (!right.ok()) return right;
        if (!left->has_value() || !right->has_value()) return Value();
        bool equal = **left == **right;
        return FromBool(n.kind == Node::Kind::kEq ? equal : !equal);
      }
      case Node::Kind::kIn: {
        auto needle = Eval(*n.children[0]);
        if (!needle.ok()) return needle;
        bool unknown = !needle->has_value();
        for (const auto& item : n.children[1]->children) {
          auto v = Eval(*item);
          if (!v.ok()) return v;
          if (!v->has_value()) {
            unknown = true;
          } else if (needle->has_value() && **v == **needle) {
            return FromBool(true);  // a known match decides it, whatever else is unknown
          }
        }
        if (unknown) return Value();
        return FromBool(false);
      }
    }
    return Status(Internal("bad expression node"));
  }

  Result<std::optional<bool>> Bool(const Node& n) {
    auto v = Eval(n);
    if (!v.ok()) return v.status();
    if (!v->has_value()) return std::optional<bool>();
    auto b = ParseBoolWord(**v);
    if (!b) {
      return InvalidArgument("\"" + **v + "\" is not a boolean (true/false, yes/no, 1/0) in \"" +
                             text_ + "\"");
    }
    return std::optional<bool>(*b);
  }

 private:
  static Value FromBool(bool b) { return Value(b ? "true" : "false"); }
  const VariableLookup& lookup_;
  const std::string& text_;
};

void CollectVariables(const Node& n, std::vector<std::string>& out) {
  auto add = [&](const std::string& name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  if (n.kind == Node::Kind::kVariable) add(n.text);
  if (n.kind == Node::Kind::kTemplate) {
    auto refs = ReferencedVariables(n.text);
    if (refs.ok()) {
      for (const auto& r : *refs) add(r);
    }
  }
  for (const auto& c : n.children) CollectVariables(*c, out);
}

}  // namespace

Result<Expression> ParseExpression(std::string_view text) {
  Parser parser(text);
  auto root = parser.ParseAll();
  if (!root.ok()) return root.status();
  Expression e;
  e.text_ = std::string(text);
  e.root_ = *root;
  return e;
}

Result<std::optional<bool>> Expression::Evaluate(const VariableLookup& lookup) const {
  if (!root_) return InvalidArgument("empty expression");
  Evaluator evaluator(lookup, text_);
  return evaluator.Bool(*root_);
}

std::vector<std::string> Expression::Variables() const {
  std::vector<std::string> out;
  if (root_) CollectVariables(*root_, out);
  return out;
}

}  // namespace reprise
