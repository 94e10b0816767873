#include "worker/testing/fake_worker_client.h"

namespace sf::worker::testing {
namespace {

// Keeps each sample whose index is new for the lease (as the coordinator stores them),
// listing it as accepted, and lists the others as duplicates.
void Store(const google::protobuf::RepeatedPtrField<v1::SampleResult>& samples,
           std::map<int32_t, v1::SampleResult>* stored,
           google::protobuf::RepeatedField<int32_t>* accepted,
           google::protobuf::RepeatedField<int32_t>* duplicates) {
  for (const v1::SampleResult& s : samples) {
    if (stored->emplace(s.index(), s).second) {
      accepted->Add(s.index());
    } else {
      duplicates->Add(s.index());
    }
  }
}

}  // namespace

absl::Status FakeWorkerClient::NextError(const std::string& method) {
  auto it = state_.errors.find(method);
  if (it == state_.errors.end() || it->second.empty()) return absl::OkStatus();
  absl::Status s = it->second.front();
  it->second.pop_front();
  return s;
}

absl::StatusOr<v1::RegisterWorkerResponse> FakeWorkerClient::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = NextError("RegisterWorker"); !s.ok()) return s;
  state_.registers.push_back(request);
  v1::RegisterWorkerResponse response;
  response.set_lease_ttl_ms(state_.lease_ttl_ms);
  return response;
}

absl::StatusOr<v1::LeaseResponse> FakeWorkerClient::Lease(const v1::LeaseRequest& request) {
  absl::MutexLock lock(&mu_);
  ++state_.lease_polls;
  if (absl::Status s = NextError("Lease"); !s.ok()) return s;
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !state_.queued.empty() || cancel_poll_;
  };
  mu_.Await(absl::Condition(&ready));
  if (cancel_poll_) {
    cancel_poll_ = false;
    return absl::CancelledError("Lease: cancelled");
  }
  v1::LeaseResponse response;
  *response.mutable_lease() = state_.queued.front();
  state_.queued.pop_front();
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> FakeWorkerClient::Heartbeat(
    const v1::HeartbeatRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = NextError("Heartbeat"); !s.ok()) return s;
  state_.heartbeats.push_back(request);
  v1::HeartbeatResponse response;
  for (const v1::LeaseProgress& p : request.leases()) {
    auto it = state_.stops.find(p.lease_token());
    if (it == state_.stops.end()) continue;
    v1::LeaseStop* stop = response.add_stop();
    stop->set_lease_token(it->first);
    stop->set_reason(it->second);
    state_.revoked.insert(it->first);
  }
  response.set_lease_ttl_ms(state_.lease_ttl_ms);
  return response;
}

absl::StatusOr<v1::ReportSamplesResponse> FakeWorkerClient::ReportSamples(
    const v1::ReportSamplesRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = NextError("ReportSamples"); !s.ok()) return s;
  state_.reports.push_back(request);
  if (state_.revoked.contains(request.lease_token())) {
    return absl::AbortedError("ReportSamples: lease expired");
  }
  v1::ReportSamplesResponse response;
  Store(request.samples(), &state_.stored[request.lease_token()], response.mutable_accepted(),
        response.mutable_duplicates());
  return response;
}

absl::StatusOr<v1::CompleteResponse> FakeWorkerClient::Complete(
    const v1::CompleteRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = NextError("Complete"); !s.ok()) return s;
  if (state_.revoked.contains(request.lease_token())) {
    return absl::AbortedError("Complete: lease expired");
  }
  state_.completes.push_back(request);
  state_.revoked.insert(request.lease_token());
  // The coordinator stores the samples that come with Complete as ReportSamples does.
  v1::CompleteResponse response;
  Store(request.samples(), &state_.stored[request.lease_token()], response.mutable_accepted(),
        response.mutable_duplicates());
  return response;
}

absl::StatusOr<v1::FailResponse> FakeWorkerClient::Fail(const v1::FailRequest& request) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = NextError("Fail"); !s.ok()) return s;
  if (state_.revoked.contains(request.lease_token())) {
    return absl::AbortedError("Fail: lease expired");
  }
  state_.fails.push_back(request);
  state_.revoked.insert(request.lease_token());
  v1::FailResponse response;
  response.set_will_retry(!request.permanent());
  return response;
}

void FakeWorkerClient::CancelLeasePoll() {
  absl::MutexLock lock(&mu_);
  cancel_poll_ = true;
}

void FakeWorkerClient::Mutate(const std::function<void(State&)>& f) {
  absl::MutexLock lock(&mu_);
  f(state_);
}

void FakeWorkerClient::Await(const std::function<bool(const State&)>& pred) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, &pred]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(state_); };
  mu_.Await(absl::Condition(&ready));
}

v1::Lease FakeWorkerClient::MakeLease(const std::string& token, const std::string& key, int samples,
                                      std::vector<int32_t> samples_done) {
  v1::Lease lease;
  lease.set_lease_token(token);
  lease.set_attempt(1);
  v1::JobSpec* job = lease.mutable_job();
  job->set_key(key);
  job->mutable_model()->set_name("tiny");
  job->set_sequence_length(512);
  job->mutable_prefill()->set_name("dense");
  job->mutable_decode()->set_name("dense");
  job->mutable_task()->set_name("ruler_niah");
  job->mutable_task()->set_samples(samples);
  for (int32_t i : samples_done) lease.add_samples_done(i);
  return lease;
}

}  // namespace sf::worker::testing
