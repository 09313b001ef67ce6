/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may not
 * use this file except in compliance with the License. You may obtain a copy
 * of the License at http://www.apache.org/licenses/LICENSE-2.0
 *
 * Hearth's reimplementation of a header that the apache-tvm 0.27 wheel omits
 * but its runtime sources include. Written from the use sites in the wheel's
 * tvm/src, tvm/include and tvm/web; only used to build the wasm runtime.
 */
/*!
 * \file src/support/arena.h
 * \brief Page-based bump allocator (used by the RPC endpoint and MinRPC server).
 *
 * Memory is handed out from pages obtained from a page allocator and is only
 * released all at once (RecycleAll keeps the pages for reuse, FreeAll returns
 * them). Destructors of objects placed in the arena are never run.
 */
#ifndef TVM_SUPPORT_ARENA_H_
#define TVM_SUPPORT_ARENA_H_

#include <tvm/ffi/error.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace tvm {
namespace support {

/*!
 * \brief Header at the start of every arena page.
 * \note Page allocators set `size` (total bytes of the page, header included) and
 *       `offset` (first free byte, counted from the start of the page); the arena
 *       owns `next`.
 */
struct ArenaPageHeader {
  /*! \brief Next page in the arena's list. */
  ArenaPageHeader* next;
  /*! \brief Total size of the page in bytes, header included. */
  size_t size;
  /*! \brief Offset of the first free byte from the start of the page. */
  size_t offset;
};

/*! \brief Page allocator on the C++ heap; pages are multiples of kPageSize. */
class SimplePageAllocator {
 public:
  static constexpr size_t kPageSize = 16 << 10;

  /*! \brief Allocate a page of at least \p min_size bytes (header included). */
  ArenaPageHeader* allocate(size_t min_size) {
    const size_t npages = (min_size + kPageSize - 1) / kPageSize;
    const size_t bytes = (npages == 0 ? 1 : npages) * kPageSize;
    void* data = ::operator new(bytes);
    ArenaPageHeader* page = static_cast<ArenaPageHeader*>(data);
    page->next = nullptr;
    page->size = bytes;
    page->offset = sizeof(ArenaPageHeader);
    return page;
  }

  void deallocate(ArenaPageHeader* page) { ::operator delete(static_cast<void*>(page)); }
};

/*!
 * \brief Bump allocator over pages from \p PageAllocator, a class with
 *        `ArenaPageHeader* allocate(size_t min_size)` and
 *        `void deallocate(ArenaPageHeader*)`.
 */
template <typename PageAllocator>
class GenericArena {
 public:
  explicit GenericArena(PageAllocator alloc = PageAllocator()) : alloc_(std::move(alloc)) {}
  GenericArena(const GenericArena&) = delete;
  GenericArena& operator=(const GenericArena&) = delete;
  ~GenericArena() { FreeAll(); }

  /*!
   * \brief Allocate \p size bytes aligned to \p align (a power of two).
   * \return Pointer to uninitialised memory valid until RecycleAll/FreeAll.
   */
  void* Alloc(size_t size, size_t align = alignof(std::max_align_t)) {
    TVM_FFI_ICHECK(align != 0 && (align & (align - 1)) == 0) << "alignment must be a power of 2";
    if (head_ != nullptr) {
      if (void* ptr = TryBump(head_, size, align)) return ptr;
    }
    // Need a new page: header, worst-case alignment padding, payload.
    const size_t need = sizeof(ArenaPageHeader) + (align - 1) + size;
    ArenaPageHeader* page = nullptr;
    if (free_list_ != nullptr && free_list_->size >= need) {
      page = free_list_;
      free_list_ = free_list_->next;
    } else {
      page = alloc_.allocate(need);
      TVM_FFI_ICHECK(page != nullptr) << "arena page allocation failed";
      TVM_FFI_ICHECK_GE(page->size, need) << "page allocator returned a page that is too small";
    }
    page->offset = sizeof(ArenaPageHeader);
    page->next = head_;
    head_ = page;
    void* ptr = TryBump(page, size, align);
    TVM_FFI_ICHECK(ptr != nullptr);
    return ptr;
  }

  /*! \brief Uninitialised storage for one \p T. */
  template <typename T>
  T* allocate_() {
    return static_cast<T*>(Alloc(sizeof(T), alignof(T)));
  }

  /*! \brief Uninitialised storage for \p count objects of type \p T. */
  template <typename T>
  T* allocate_(int count) {
    TVM_FFI_ICHECK_GE(count, 0);
    return static_cast<T*>(Alloc(sizeof(T) * static_cast<size_t>(count), alignof(T)));
  }

  /*! \brief Construct a \p T in the arena (its destructor will not run). */
  template <typename T, typename... Args>
  T* make(Args&&... args) {
    return new (allocate_<T>()) T(std::forward<Args>(args)...);
  }

  /*! \brief Invalidate every allocation but keep the pages for reuse. */
  void RecycleAll() {
    while (head_ != nullptr) {
      ArenaPageHeader* next = head_->next;
      head_->next = free_list_;
      free_list_ = head_;
      head_ = next;
    }
  }

  /*! \brief Invalidate every allocation and return all pages to the allocator. */
  void FreeAll() {
    FreeList(head_);
    FreeList(free_list_);
    head_ = nullptr;
    free_list_ = nullptr;
  }

 private:
  static void* TryBump(ArenaPageHeader* page, size_t size, size_t align) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(page);
    const uintptr_t aligned = (base + page->offset + align - 1) & ~(uintptr_t(align) - 1);
    const size_t offset = static_cast<size_t>(aligned - base);
    if (offset > page->size || size > page->size - offset) return nullptr;
    page->offset = offset + size;
    return reinterpret_cast<void*>(aligned);
  }

  void FreeList(ArenaPageHeader* page) {
    while (page != nullptr) {
      ArenaPageHeader* next = page->next;
      alloc_.deallocate(page);
      page = next;
    }
  }

  PageAllocator alloc_;
  ArenaPageHeader* head_{nullptr};
  ArenaPageHeader* free_list_{nullptr};
};

/*! \brief Arena on the C++ heap. */
using Arena = GenericArena<SimplePageAllocator>;

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_ARENA_H_
