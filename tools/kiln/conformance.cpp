// `kiln conformance DIR...`: runs ONNX backend test cases and reports pass/fail/skip per case and
// suite; with --expected, fails only on regressions against a committed list of passing cases.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "cli_util.hpp"
#include "commands.hpp"
#include "conformance_runner.hpp"
#include "io/file.hpp"
#include "util/error.hpp"

namespace kiln::cli {

namespace {

struct ConformanceOptions {
  std::vector<std::string> dirs;
  std::string backend = "cpu";
  std::string filter;
  std::string json;
  std::string expected;
  std::string write_expected;
  bool verbose = false;
};

struct Counts {
  int pass = 0, fail = 0, skip = 0;
  void add(CaseStatus s) { (s == CaseStatus::kPass ? pass : s == CaseStatus::kFail ? fail : skip)++; }
  std::string text() const { return fmt::format("{} passed, {} failed, {} skipped", pass, fail, skip); }
};

// "suite/case" lines; '#' starts a comment.
Expected<std::set<std::string>> read_expected(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path));
  std::set<std::string> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    line = line.substr(0, line.find('#'));
    size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos) continue;
    line = line.substr(b, e - b + 1);
    if (line.find('/') == std::string::npos)
      return invalid_argument("'{}' line {}: expected 'suite/case', got '{}'", path, lineno, line);
    out.insert(line);
  }
  return out;
}

Status write_json(const std::string& path, const std::vector<CaseResult>& results,
                  const std::map<std::string, Counts>& suites, const Counts& total) {
  nlohmann::ordered_json cases = nlohmann::ordered_json::array();
  for (const CaseResult& r : results)
    cases.push_back({{"suite", r.test.suite},
                     {"name", r.test.name},
                     {"status", case_status_name(r.status)},
                     {"reason", r.reason},
                     {"seconds", r.seconds}});
  nlohmann::ordered_json s = nlohmann::ordered_json::object();
  for (const auto& [name, c] : suites) s[name] = {{"passed", c.pass}, {"failed", c.fail}, {"skipped", c.skip}};
  nlohmann::ordered_json doc = {{"passed", total.pass}, {"failed", total.fail}, {"skipped", total.skip},
                        {"suites", s},         {"cases", cases}};
  return write_file_atomic(path, doc.dump(2) + "\n");
}

int conformance_command(const ConformanceOptions& opt) {
  auto backend = parse_backend(opt.backend);
  if (!backend.ok()) return report_error(backend.status());
  if (Status st = check_backend_available(*backend); !st.ok()) return report_error(st);
  std::optional<std::regex> filter;
  if (!opt.filter.empty()) {
    try {
      filter.emplace(opt.filter, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return report_error(fmt::format("--filter '{}' is not a valid regular expression: {}", opt.filter, e.what()));
    }
  }
  std::optional<std::set<std::string>> expected;
  if (!opt.expected.empty()) {
    auto e = read_expected(opt.expected);
    if (!e.ok()) return report_error(e.status());
    expected = std::move(e).value();
  }

  std::vector<TestCase> cases;
  std::set<std::string> suites_run;
  for (const std::string& dir : opt.dirs) {
    auto found = find_test_cases(dir);
    if (!found.ok()) return report_error(found.status());
    if (found->empty()) return report_error(fmt::format("no test cases (model.onnx + test_data_set_*) in '{}'", dir));
    for (TestCase& c : *found) {
      suites_run.insert(c.suite);
      if (!filter || std::regex_search(c.id(), *filter)) cases.push_back(std::move(c));
    }
  }

  std::vector<CaseResult> results;
  std::map<std::string, Counts> suites;
  Counts total;
  for (const TestCase& c : cases) {
    CaseResult r = run_test_case(c, *backend);
    suites[c.suite].add(r.status);
    total.add(r.status);
    if (r.status != CaseStatus::kPass) {
      // The console gets the start of long reasons; --json has them whole.
      std::string reason = r.reason.size() > 400 ? r.reason.substr(0, 400) + " ..." : r.reason;
      std::printf("%s %s: %s\n", r.status == CaseStatus::kFail ? "FAIL" : "SKIP", c.id().c_str(), reason.c_str());
    } else if (opt.verbose) {
      std::printf("PASS %s (%.3f s)\n", c.id().c_str(), r.seconds);
    }
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  for (const auto& [name, c] : suites) std::printf("suite %s: %s\n", name.c_str(), c.text().c_str());

  if (!opt.json.empty()) {
    Status st = write_json(opt.json, results, suites, total);
    if (!st.ok()) return report_error(st);
  }
  std::set<std::string> passing;
  for (const CaseResult& r : results)
    if (r.status == CaseStatus::kPass) passing.insert(r.test.id());
  if (!opt.write_expected.empty()) {
    std::string text = "# Conformance cases expected to pass (suite/case), one per line.\n"
                       "# Written by: kiln conformance ... --write-expected FILE\n";
    for (const std::string& id : passing) text += id + "\n";
    Status st = write_file_atomic(opt.write_expected, text);
    if (!st.ok()) return report_error(st);
  }

  int rc = total.fail > 0 ? 1 : 0;
  if (expected) {
    // Only expected cases of the suites (and filter) run here can regress.
    std::map<std::string, const CaseResult*> by_id;
    for (const CaseResult& r : results) by_id[r.test.id()] = &r;
    std::vector<std::string> regressions;
    for (const std::string& id : *expected) {
      if (!suites_run.count(id.substr(0, id.find('/')))) continue;
      if (filter && !std::regex_search(id, *filter)) continue;
      auto it = by_id.find(id);
      if (it == by_id.end()) regressions.push_back(id + ": not found");
      else if (it->second->status != CaseStatus::kPass)
        regressions.push_back(fmt::format("{}: {}: {}", id, case_status_name(it->second->status),
                                          it->second->reason.substr(0, 400)));
    }
    std::vector<std::string> fresh;
    for (const std::string& id : passing)
      if (!expected->count(id)) fresh.push_back(id);
    if (!fresh.empty()) {
      std::printf("%zu case%s pass but %s not in %s (update with --write-expected %s):", fresh.size(),
                  fresh.size() == 1 ? "" : "s", fresh.size() == 1 ? "is" : "are", opt.expected.c_str(),
                  opt.expected.c_str());
      for (size_t i = 0; i < fresh.size() && i < 20; ++i) std::printf(" %s", fresh[i].c_str());
      std::printf(fresh.size() > 20 ? " ...\n" : "\n");
    }
    for (const std::string& r : regressions) std::printf("REGRESSION %s\n", r.c_str());
    if (!regressions.empty())
      std::printf("%zu expected case%s did not pass (list: %s)\n", regressions.size(),
                  regressions.size() == 1 ? "" : "s", opt.expected.c_str());
    rc = regressions.empty() ? 0 : 1;
  }
  std::printf("%s\n", total.text().c_str());
  return rc;
}

}  // namespace

void add_conformance_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<ConformanceOptions>();
  auto* cmd = app.add_subcommand(
      "conformance",
      "Run ONNX backend test cases (folders with model.onnx and test_data_set_*) and compare the outputs.\n"
      "Exit status: without --expected, non-zero when a case fails; with --expected, non-zero only when a listed "
      "case does not pass");
  cmd->add_option("dirs", opt->dirs, "Test data folders; each one's basename names its suite")->required();
  cmd->add_option("--backend", opt->backend, "cpu, cuda or auto")->default_val("cpu");
  cmd->add_option("--filter", opt->filter, "Only cases whose 'suite/case' matches this regular expression");
  cmd->add_option("--json", opt->json, "Write the full report (every case) to this JSON file");
  cmd->add_option("--expected", opt->expected, "File of 'suite/case' lines expected to pass ('#' comments)");
  cmd->add_option("--write-expected", opt->write_expected, "Write the passing cases to this file");
  cmd->add_flag("--verbose,-v", opt->verbose, "Also list passing cases with their times");
  cmd->callback([&action, opt] { action = [opt] { return conformance_command(*opt); }; });
}

}  // namespace kiln::cli
