// Result<T, E>: a value or a typed error, returned across module boundaries instead of exceptions
// (STYLE.md, "One concept per file, errors as values"). E is a module's error type, e.g.
// storage::Error; Result<void, E> is a plain status.
#pragma once

#include <cassert>
#include <optional>
#include <utility>
#include <variant>

namespace gannet {

template <typename E>
struct Unexpected {
  E error;
};

template <typename E>
Unexpected<E> make_unexpected(E e) {
  return Unexpected<E>{std::move(e)};
}

template <typename T, typename E>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected<E> u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT
  Result(E e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const E& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, E> v_;
};

template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(Unexpected<E> u) : e_(std::move(u.error)) {}  // NOLINT
  Result(E e) : e_(std::move(e)) {}  // NOLINT

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const E& error() const {
    assert(!ok());
    return *e_;
  }

 private:
  std::optional<E> e_;
};

}  // namespace gannet

// Returns the error of a failed Result from the enclosing function.
#define GANNET_RETURN_IF_ERROR(expr)                  \
  do {                                                \
    auto _gannet_r = (expr);                          \
    if (!_gannet_r.ok()) return _gannet_r.error();    \
  } while (0)

#define GANNET_CONCAT_INNER(a, b) a##b
#define GANNET_CONCAT(a, b) GANNET_CONCAT_INNER(a, b)
// Declares `lhs` from a Result's value, or returns its error.
#define GANNET_ASSIGN_OR_RETURN(lhs, expr) \
  GANNET_ASSIGN_OR_RETURN_IMPL(GANNET_CONCAT(_gannet_r_, __LINE__), lhs, expr)
#define GANNET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.error();                 \
  lhs = std::move(tmp).value()
