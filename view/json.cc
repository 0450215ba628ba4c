// `show --json` and `walk --json`: the state and the walk as JSON documents, with the
// kernel's field names (docs/json.md; the schema: docs/json/).
#include "rmapkit/view/json.h"

#include "rmapkit/scenario/json.h"

namespace rmapkit::view {

namespace {

using json = nlohmann::json;

json pte_json(const pte_ref& p) {
  return {{"process", p.process}, {"region", p.region}, {"index", p.index}, {"address", p.addr.value},
          {"vma", p.vma},         {"write", p.write},   {"young", p.young}, {"dirty", p.dirty}};
}

json vma_json(const vma_view& v) {
  json j{{"id", v.id},
         {"region", v.region},
         {"first", v.first},
         {"end", v.end},
         {"vm_start", v.vm_start.value},
         {"vm_end", v.vm_end.value},
         {"perms", v.perms},
         {"vm_flags", v.vm_flags},
         {"vm_pgoff", v.vm_pgoff},
         {"anon_vma_chain", v.anon_vma_chain}};
  j["vm_file"] = v.file.empty() ? json(nullptr) : json(v.file);
  j["anon_vma"] = v.anon_vma ? json(*v.anon_vma) : json(nullptr);
  return j;
}

json anon_vma_json(const anon_vma_view& a) {
  json tree = json::array();
  for (const auto& c : a.rb_root) tree.push_back({{"first", c.first}, {"last", c.last}, {"vma", c.vma}});
  return {{"id", a.id},
          {"root", a.root},
          {"parent", a.parent},
          {"refcount", a.refcount},
          {"num_children", a.num_children},
          {"num_active_vmas", a.num_active_vmas},
          {"ksm_refs", a.ksm_refs},
          {"rb_root", tree}};
}

json file_json(const file_view& f) {
  json i_mmap = json::array(), i_pages = json::array(), swapped = json::array();
  for (const auto& v : f.i_mmap) i_mmap.push_back({{"first", v.first}, {"last", v.last}, {"vma", v.vma}});
  for (const auto& [index, frame] : f.i_pages) i_pages.push_back({{"index", index}, {"frame", frame}});
  for (const auto& [index, swap] : f.swapped) swapped.push_back({{"index", index}, {"swap", swap}});
  return {{"name", f.name},    {"shmem", f.shmem}, {"anon_shared", f.anon_shared},
          {"pages", f.pages},  {"i_mmap", i_mmap}, {"i_pages", i_pages},
          {"swapped", swapped}};
}

json ksm_json(const ksm_view& k) {
  json stable = json::array(), items = json::array(), unstable = json::array();
  for (const auto& n : k.stable) {
    json hlist = json::array();
    for (const auto& [proc, addr] : n.hlist) hlist.push_back({{"process", proc}, {"address", addr.value}});
    stable.push_back({{"id", n.id}, {"kpfn", n.frame}, {"chain", n.chain}, {"hlist", hlist}});
  }
  for (const auto& r : k.rmap_items)
    items.push_back({{"process", r.process},
                     {"address", r.address.value},
                     {"anon_vma", r.anon_vma ? json(*r.anon_vma) : json(nullptr)},
                     {"stable_node", r.stable_node ? json(*r.stable_node) : json(nullptr)},
                     {"unstable", r.unstable}});
  for (const auto& [proc, addr] : k.unstable) unstable.push_back({{"process", proc}, {"address", addr.value}});
  return {{"mm_slots", k.mm_slots}, {"stable_nodes", stable}, {"rmap_items", items}, {"unstable_tree", unstable}};
}

json folio_json(const folio_view& f) {
  json mapped = json::array();
  for (const auto& p : f.mapped_by) mapped.push_back(pte_json(p));
  json j{{"frame", f.id},          {"mapping", f.mapping}, {"index", f.index},   {"mapcount", f.mapcount},
         {"refcount", f.refcount}, {"flags", f.flags},     {"mapped_by", mapped}};
  j["anon_vma"] = f.anon_vma ? json(*f.anon_vma) : json(nullptr);
  j["stable_node"] = f.stable_node ? json(*f.stable_node) : json(nullptr);
  j["file"] = f.file.empty() ? json(nullptr) : json(f.file);
  j["swap"] = f.swap ? json(*f.swap) : json(nullptr);
  j["lru"] = f.lru.empty() ? json(nullptr) : json(f.lru);
  if (f.large)
    j["folio"] = {{"head", f.large->head ? json(*f.large->head) : json(nullptr)},
                  {"order", f.large->order},
                  {"sub", f.large->sub}};
  return j;
}

json design_json(const design_object_view& o) {
  json fields = json::object(), links = json::array();
  for (const auto& [k, v] : o.fields) fields[k] = v;
  for (const auto& [k, v] : o.links) links.push_back({{"field", k}, {"to", v}});
  return {{"id", o.id}, {"type", o.type}, {"fields", fields}, {"links", links}};
}

json where_json(const std::string& file, std::size_t position, int line, const std::string& statement,
                const std::string& design) {
  return {{"file", file}, {"position", position}, {"line", line}, {"statement", statement}, {"design", design}};
}

json state_body(const state& st) {
  json mms = json::array(), avs = json::array(), files = json::array(), folios = json::array(), objects = json::array();
  for (const auto& m : st.mms) {
    json vmas = json::array();
    for (const auto& v : m.vmas) vmas.push_back(vma_json(v));
    mms.push_back({{"process", m.process}, {"vmas", vmas}});
  }
  for (const auto& a : st.anon_vmas) avs.push_back(anon_vma_json(a));
  for (const auto& f : st.files) files.push_back(file_json(f));
  for (const auto& f : st.folios) folios.push_back(folio_json(f));
  for (const auto& o : st.design_objects) objects.push_back(design_json(o));
  json filter = json::object();
  if (st.filter.pid) filter["pid"] = *st.filter.pid;
  if (st.filter.frame) filter["frame"] = *st.filter.frame;
  if (st.filter.anon_vma) filter["anon_vma"] = *st.filter.anon_vma;
  if (st.filter.file) filter["file"] = *st.filter.file;
  return {{"at", where_json(st.file, st.position, st.line, st.statement, st.design)},
          {"filter", filter},
          {"mms", mms},
          {"anon_vmas", avs},
          {"files", files},
          {"ksm", ksm_json(st.ksm)},
          {"folios", folios},
          {"design_objects", objects}};
}

json counts_json(const walk_counts& c) {
  return {{"walks", c.walks},
          {"entries", c.entries},
          {"vmas_visited", c.vmas_visited},
          {"ptes_examined", c.ptes_examined},
          {"misses", c.misses}};
}

}  // namespace

json show_document(const state* st, std::span<const scenario::diag> errors) {
  json j = scenario::envelope("show");
  if (st) j.update(state_body(*st));
  j["errors"] = scenario::to_json(errors);
  return j;
}

json walk_document(const walk_view* w, std::span<const scenario::diag> errors) {
  json j = scenario::envelope("walk");
  j["errors"] = scenario::to_json(errors);
  if (!w) return j;
  json steps = json::array();
  for (const auto& s : w->steps) {
    json step{{"kind", s.kind}, {"text", s.text}};
    if (!s.object.empty()) step["object"] = s.object;
    if (!s.vma.empty()) step["vma"] = s.vma;
    if (s.addr) step["address"] = *s.addr;
    if (s.ok) step["ok"] = *s.ok;
    steps.push_back(step);
  }
  j["at"] = where_json(w->file, w->position, w->line, w->statement, w->design);
  j["frame"] = w->frame;
  j["op"] = to_string(w->op);
  j["prelude"] = w->prelude;
  j["steps"] = steps;
  j["result"] = w->result;
  j["counts"] = counts_json(w->counts);
  j["before"] = state_body(w->before);
  j["after"] = w->after.folios.empty() ? json(nullptr) : state_body(w->after);
  return j;
}

std::string format_json(const state& st) { return scenario::dump(show_document(&st, {})); }
std::string format_json(const walk_view& w) { return scenario::dump(walk_document(&w, {})); }

}  // namespace rmapkit::view
