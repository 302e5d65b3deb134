-- Argo CD health check for mme-operator.io/ModelEndpoint.
-- Healthy:     Ready condition True and status.observedGeneration == metadata.generation;
--              a CacheHealthy False (Thrashing, MemoryPressure) stays Healthy, said in the
--              message: the endpoint serves, slower, and the signal moves with traffic.
-- Degraded:    Ready False for a reason retrying cannot fix, or phase Failed.
-- Progressing: everything else (no status yet, a newer spec not yet seen, deleting, waiting).
local hs = {}

-- Every reason the operator sets is in one of these two tables (a test checks it).
-- Degraded: only a person can fix it (the spec, the source, IAM, SageMaker's side).
local terminal = {
  InvalidSpec = true,
  IdentityChanged = true,
  SourceError = true,
  ArtifactConflict = true,
  LoadFailed = true,
  EndpointFailed = true,
  UpdateFailed = true,
  RolledBack = true,
  AccessDenied = true,
  NotOwned = true,
  NoServableModels = true,
  PolicyDenied = true,
}

-- Progressing: the operator or SageMaker is still at it, or retries by itself. AwsError
-- comes with phase Failed when terminal (Degraded by the phase rule), Syncing while retried.
local progressing = {
  Reconciled = true,
  Retrying = true,
  AwsError = true,
  BucketMissing = true,
  Uploading = true,
  Synced = true,
  EndpointCreating = true,
  EndpointUpdating = true,
  RollingBack = true,
  InService = true,
  Deleting = true,
  WarmingUp = true,
  WarmUpFailed = true,
  WarmedUp = true,
  Loaded = true,
  Fits = true,
  DoesNotFit = true,
  Disabled = true,
  Configured = true,
  WaitingForEndpoint = true,
  ServingPrevious = true,
  ConfigMapNotOwned = true,
  -- CacheHealthy's reasons: never Ready's, so never Degraded; told in a Healthy message.
  Thrashing = true,
  MemoryPressure = true,
  CacheEffective = true,
  CacheDisabled = true,
  InsufficientData = true,
  MetricsUnavailable = true,
  -- A Model's reasons (argocd/model-health.lua): never a ModelEndpoint's Ready.
  Attached = true,
  NotAllowedByEndpoint = true,
  NameConflict = true,
  EndpointNotFound = true,
  EndpointGone = true,
  ModelAvailable = true,
  ModelPending = true,
  EndpointNotReady = true,
}

local function find_condition(status, ctype)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == ctype then
      return condition
    end
  end
  return nil
end

local function describe(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting: the operator is cleaning up the SageMaker endpoint"
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local ready = find_condition(status, "Ready")

if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(ready, status.message or "ModelEndpoint failed")
  return hs
end

if ready ~= nil and ready.status == "False" and ready.reason ~= nil and terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready, ready.reason)
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local current = status.observedGeneration ~= nil and status.observedGeneration == generation

if ready ~= nil and ready.status == "True" then
  if current then
    hs.status = "Healthy"
    hs.message = describe(ready, "Ready")
    local cache = find_condition(status, "CacheHealthy")
    if cache ~= nil and cache.status == "False" then
      hs.message = hs.message .. "; CacheHealthy False (" .. tostring(cache.reason) .. "): "
        .. describe(cache, "")
    end
    return hs
  end
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Phase " .. tostring(status.phase or "Pending"))
return hs
