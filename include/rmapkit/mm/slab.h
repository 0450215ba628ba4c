// slab_cache<T>: owns the objects the kernel allocates from slab caches (anon_vma,
// anon_vma_chain, vm_area_struct, ...). Objects have stable addresses until freed, and
// the cache counts them, so a leak is one comparison away (invariant: nothing left once
// every process has exited).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace rmapkit::mm {

template <typename T>
class slab_cache {
 public:
  template <typename... Args>
  T* alloc(Args&&... args) {
    auto obj = std::make_unique<T>(std::forward<Args>(args)...);
    T* p = obj.get();
    _objs.emplace(p, std::move(obj));
    ++_allocated;
    return p;
  }

  void free(T* p) {
    if (_objs.erase(p) != 1) throw std::logic_error("slab_cache: freeing an object it does not own");
    ++_freed;
  }

  [[nodiscard]] bool owns(const T* p) const { return _objs.count(const_cast<T*>(p)) != 0; }
  [[nodiscard]] std::size_t live() const { return _objs.size(); }
  [[nodiscard]] std::size_t allocated() const { return _allocated; }
  [[nodiscard]] std::size_t freed() const { return _freed; }

  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [p, obj] : _objs) f(*p);
  }

 private:
  std::unordered_map<T*, std::unique_ptr<T>> _objs;
  std::size_t _allocated = 0, _freed = 0;
};

}  // namespace rmapkit::mm
