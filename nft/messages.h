#pragma once

// Building libnftnl objects from the model, apart from any socket (katran keeps the same split). Only nft/
// includes libnftnl.

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nftpol/nft/kernel_view.h"

namespace nftpol::nft {

template <typename T, void (*Free)(const T*)>
struct NftnlDeleter {
  void operator()(T* p) const { Free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, NftnlDeleter<nftnl_table, nftnl_table_free>>;
using ChainPtr = std::unique_ptr<nftnl_chain, NftnlDeleter<nftnl_chain, nftnl_chain_free>>;
using RulePtr = std::unique_ptr<nftnl_rule, NftnlDeleter<nftnl_rule, nftnl_rule_free>>;
using SetPtr = std::unique_ptr<nftnl_set, NftnlDeleter<nftnl_set, nftnl_set_free>>;
using ObjPtr = std::unique_ptr<nftnl_obj, NftnlDeleter<nftnl_obj, nftnl_obj_free>>;

constexpr uint16_t kFamily = 1;  // NFPROTO_INET

TablePtr buildTable(const Table& table);
ChainPtr buildChain(const Table& table, const Chain& chain);
RulePtr buildRule(const Table& table, const std::string& chain, const Rule& rule);
SetPtr buildSet(const Table& table, const Set& set, uint32_t setId);
SetPtr buildSet(const Table& table, const Map& map, uint32_t setId);
// A set object carrying only these elements, for NEWSETELEM/DELSETELEM.
// A named counter (the comment only when adding one).
ObjPtr buildCounter(const Table& table, const std::string& name, const std::string& comment = "");
SetPtr buildElements(const Table& table, const std::string& set, const std::vector<ElementTuple>& elements);

// A base chain's hook, by nft's name and the kernel's number.
uint32_t hookNumber(Hook hook);
std::optional<Hook> hookOf(uint32_t number);  // nullopt: a hook the inet family does not have
std::optional<ChainType> chainTypeOf(std::string_view name);

SetView setViewOf(const Set& set);  // spec and encoded elements
SetView setViewOf(const Map& map);
std::string ruleSignature(nftnl_rule* rule);  // expressions and comment, as libnftnl prints them

}  // namespace nftpol::nft
