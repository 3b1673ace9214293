# frozen_string_literal: true

require "minitest/autorun"
require "net/http"
require "json"
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "orchestrator/http_api"

class HttpApiTest < Minitest::Test
  def setup
    @api = Orchestrator::HttpApi.new(Orchestrator::TaskQueue.new)
    @thread = Thread.new { @api.serve }
    @http = Net::HTTP.new("127.0.0.1", @api.port)
  end

  def teardown
    @api.stop
    @thread.join
  end

  def post(path, doc)
    @http.post(path, JSON.generate(doc), "Content-Type" => "application/json")
  end

  def test_health
    res = @http.get("/health")
    assert_equal "200", res.code
    assert_equal "ok", JSON.parse(res.body)["status"]
  end

  def test_a_task_goes_from_queued_to_done_over_http
    created = post("/tasks", { "benchmark" => "fib", "ruby_bench_ref" => "main" })
    assert_equal "201", created.code
    id = JSON.parse(created.body)["id"]
    claim = post("/tasks/claim", { "runner" => "r1" })
    assert_equal "200", claim.code
    assert_equal id, JSON.parse(claim.body)["id"]
    assert_equal "204", post("/tasks/claim", { "runner" => "r2" }).code
    assert_equal "200", post("/tasks/#{id}/result", { "status" => "ok", "results" => { "bench" => [0.1] } }).code
    task = JSON.parse(@http.get("/tasks/#{id}").body)
    assert_equal "done", task["status"]
    assert_equal [0.1], task["result"]["results"]["bench"]
  end

  def test_errors_are_json_with_the_right_status
    assert_equal "400", post("/tasks", { "benchmark" => "a b" }).code
    assert_equal "404", @http.get("/tasks/nope").code
    assert_equal "404", @http.get("/nope").code
    assert_equal "405", @http.get("/tasks/claim").code
    bad = @http.post("/tasks", "{not json", "Content-Type" => "application/json")
    assert_equal "400", bad.code
    assert JSON.parse(bad.body)["error"]
  end
end
