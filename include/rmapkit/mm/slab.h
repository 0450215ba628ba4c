// slab_cache<T>: owns the objects the kernel allocates from slab caches (anon_vma,
// anon_vma_chain, vm_area_struct, ...). Objects have stable addresses until freed, and
// the cache counts them, so a leak is one comparison away (invariant: nothing left once
// every process has exited).
//
// Like the kernel's slab allocator it carves objects out of large blocks ("slabs", 16 KiB
// or more, aligned to their size) and keeps a free list, so an object costs sizeof(T)
// and a bit of its slab's bitmap; no per-object heap allocation, no per-object index
// (docs/performance.md: an unordered_map of unique_ptrs cost 35-42 bytes per object and
// more than half of the scale run's time). The slab of an object is found by masking its
// address; a set of slab addresses tells whether a pointer is ours, and the bitmap
// whether the object is live, so freeing a foreign or already freed object is still
// detected. Slabs are kept until the cache goes (the kernel would shrink them), and then
// up to 1 MiB of them per object type for the next cache. They are cut from huge pages
// (huge_arena.h): at ten million objects, 4 KiB pages made nearly every access a TLB miss.
//
// Under AddressSanitizer free slots are poisoned, so a use after free of a model object is
// still reported.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "rmapkit/mm/huge_arena.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RMAPKIT_SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RMAPKIT_SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RMAPKIT_SLAB_POISON(p, n) ((void)(p), (void)(n))
#define RMAPKIT_SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace rmapkit::mm {

template <typename T>
class slab_cache {
 public:
  slab_cache() = default;
  slab_cache(const slab_cache&) = delete;
  slab_cache& operator=(const slab_cache&) = delete;
  ~slab_cache() {
    for (auto& s : _slabs) {
      for_each_live(*s, [](T& obj) { obj.~T(); });
      RMAPKIT_SLAB_UNPOISON(s.get(), SLAB_BYTES);
    }
  }

  template <typename... Args>
  T* alloc(Args&&... args) {
    if (_free.empty()) grow();
    std::byte* mem = _free.back();
    RMAPKIT_SLAB_UNPOISON(mem, sizeof(T));
    T* p;
    try {
      p = ::new (static_cast<void*>(mem)) T(std::forward<Args>(args)...);
    } catch (...) {
      RMAPKIT_SLAB_POISON(mem, sizeof(T));
      throw;
    }
    _free.pop_back();
    auto& s = slab_of(mem);
    auto i = index_of(s, mem);
    s.used[i / 64] |= std::uint64_t{1} << (i % 64);
    ++_live;
    ++_allocated;
    return p;
  }

  void free(T* p) {
    auto* mem = reinterpret_cast<std::byte*>(p);
    slab* s = find(mem);
    std::size_t i = s ? index_of(*s, mem) : OBJECTS;
    if (i >= OBJECTS || !(s->used[i / 64] & (std::uint64_t{1} << (i % 64))))
      throw std::logic_error("slab_cache: freeing an object it does not own");
    p->~T();
    s->used[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    RMAPKIT_SLAB_POISON(mem, sizeof(T));
    _free.push_back(mem);
    --_live;
    ++_freed;
  }

  [[nodiscard]] bool owns(const T* p) const {
    auto* mem = reinterpret_cast<std::byte*>(const_cast<T*>(p));
    const slab* s = find(mem);
    if (!s) return false;
    std::size_t i = index_of(*s, mem);
    return i < OBJECTS && (s->used[i / 64] & (std::uint64_t{1} << (i % 64))) != 0;
  }
  [[nodiscard]] std::size_t live() const { return _live; }
  [[nodiscard]] std::size_t allocated() const { return _allocated; }
  [[nodiscard]] std::size_t freed() const { return _freed; }

  /// Calls f(const T&) for every live object, in slab and address order.
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& s : _slabs) for_each_live(*s, [&f](T& obj) { f(static_cast<const T&>(obj)); });
  }

 private:
  /// Slab size: a power of two, at least 16 KiB and at least 8 objects (and at most a huge
  /// page: slabs come from huge_arena_alloc()).
  static constexpr std::size_t SLAB_BYTES = [] {
    std::size_t b = 16 * 1024;
    while (b < 8 * sizeof(T) + 1024) b *= 2;
    return b;
  }();
  static constexpr std::size_t MAX_OBJECTS = SLAB_BYTES / sizeof(T);
  static constexpr std::size_t WORDS = (MAX_OBJECTS + 63) / 64;

  struct slab {
    std::uint64_t used[WORDS]{};  // bit i: object i is live
  };
  static constexpr std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
  static constexpr std::size_t OBJECTS_AT = align_up(sizeof(slab),
                                                     alignof(T) > alignof(slab) ? alignof(T) : alignof(slab));
  static constexpr std::size_t OBJECTS = (SLAB_BYTES - OBJECTS_AT) / sizeof(T);
  static_assert(OBJECTS >= 1 && OBJECTS <= MAX_OBJECTS);
  static_assert(alignof(T) <= SLAB_BYTES);
  static_assert(SLAB_BYTES <= HUGE_REGION_BYTES);

  /// Slab memory of caches that are gone, for the next cache of this type: every scenario
  /// run builds a fresh machine, and fresh memory costs a fault and a clear (a slab given
  /// back is unmapped).
  class slab_pool {
   public:
    slab_pool() = default;
    slab_pool(const slab_pool&) = delete;
    slab_pool& operator=(const slab_pool&) = delete;
    ~slab_pool() {
      for (void* m : _mem) huge_arena_free(m, SLAB_BYTES);
    }
    void* get() {
      {
        std::lock_guard<std::mutex> g(_lock);
        if (!_mem.empty()) {
          void* m = _mem.back();
          _mem.pop_back();
          return m;
        }
      }
      return huge_arena_alloc(SLAB_BYTES);
    }
    void put(void* m) noexcept {
      {
        std::lock_guard<std::mutex> g(_lock);
        if (_mem.size() < POOL_SLABS) {
          _mem.push_back(m);  // no allocation: capacity is reserved
          return;
        }
      }
      huge_arena_free(m, SLAB_BYTES);
    }

   private:
    static constexpr std::size_t POOL_SLABS = (1U << 20) / SLAB_BYTES;  // 1 MiB per object type
    std::mutex _lock;
    std::vector<void*> _mem = [] {
      std::vector<void*> v;
      v.reserve(POOL_SLABS);
      return v;
    }();
  };
  static slab_pool& pool() {
    static slab_pool p;  // machines are never static: every cache is gone before it is
    return p;
  }

  struct slab_delete {
    void operator()(slab* s) const {
      s->~slab();
      pool().put(s);
    }
  };

  static std::byte* objects(slab& s) { return reinterpret_cast<std::byte*>(&s) + OBJECTS_AT; }
  static const std::byte* objects(const slab& s) { return reinterpret_cast<const std::byte*>(&s) + OBJECTS_AT; }
  static slab& slab_of(std::byte* mem) {
    return *reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(mem) & ~(std::uintptr_t{SLAB_BYTES} - 1));
  }
  /// The object index of @mem in @s; OBJECTS when @mem is not the start of an object.
  static std::size_t index_of(const slab& s, const std::byte* mem) {
    auto off = reinterpret_cast<std::uintptr_t>(mem) - reinterpret_cast<std::uintptr_t>(objects(s));
    if (reinterpret_cast<std::uintptr_t>(mem) < reinterpret_cast<std::uintptr_t>(objects(s)) || off % sizeof(T) != 0)
      return OBJECTS;
    return std::min<std::size_t>(off / sizeof(T), OBJECTS);
  }
  /// Our slab holding @mem, or null.
  slab* find(std::byte* mem) const {
    auto base = reinterpret_cast<std::uintptr_t>(mem) & ~(std::uintptr_t{SLAB_BYTES} - 1);
    return _bases.count(base) ? reinterpret_cast<slab*>(base) : nullptr;
  }

  template <typename F>
  static void for_each_live(const slab& s, F&& f) {
    for (std::size_t w = 0; w < WORDS; ++w)
      for (std::uint64_t bits = s.used[w]; bits; bits &= bits - 1) {
        std::size_t i = w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
        f(*std::launder(reinterpret_cast<T*>(const_cast<std::byte*>(objects(s)) + i * sizeof(T))));
      }
  }

  /// Room for @more elements in @v, grown geometrically: reserve(size() + n) allocates exactly
  /// that, so growing one slab at a time would copy the whole vector on every grow(): at 10^7
  /// frames the AVC cache holds about 96,000 slabs, and the copies went to freshly faulted
  /// heap (docs/performance.md, issue 18, 2026-12-07).
  template <typename V>
  static void reserve_more(V& v, std::size_t more) {
    if (v.capacity() - v.size() < more) v.reserve(std::max(v.size() + more, 2 * v.capacity()));
  }

  void grow() {
    // Room first, so nothing after pool().get() throws but the insertion into _bases.
    reserve_more(_free, OBJECTS);
    reserve_more(_slabs, 1);
    void* raw = pool().get();
    std::unique_ptr<slab, slab_delete> s(::new (raw) slab{});
    _bases.insert(reinterpret_cast<std::uintptr_t>(raw));  // the last call that may throw
    // Handed out in address order.
    for (std::size_t i = OBJECTS; i-- > 0;) _free.push_back(objects(*s) + i * sizeof(T));
    RMAPKIT_SLAB_POISON(objects(*s), OBJECTS * sizeof(T));
    _slabs.push_back(std::move(s));
  }

  std::vector<std::unique_ptr<slab, slab_delete>> _slabs;
  std::unordered_set<std::uintptr_t> _bases;
  std::vector<std::byte*> _free;  // free object slots, last freed first (hot in cache)
  std::size_t _live = 0, _allocated = 0, _freed = 0;
};

}  // namespace rmapkit::mm

#undef RMAPKIT_SLAB_POISON
#undef RMAPKIT_SLAB_UNPOISON
