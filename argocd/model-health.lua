-- Argo CD health check for mme-operator.io/Model (a model attached to a shared ModelEndpoint).
-- Healthy:     Ready True and status.observedGeneration == metadata.generation: it is served.
-- Degraded:    Accepted False (the endpoint does not admit it, its name is taken, or there is
--              no such endpoint), or Ready False for a reason only a person can fix.
-- Progressing: everything else (no status yet, a newer spec not yet seen, uploading, loading).
local hs = {}

-- Ready reasons that only a change of the Model (its source, its spec) can fix.
local terminal = {
  SourceError = true,
  LoadFailed = true,
  InvalidSpec = true,
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

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the endpoint's operator to report status"
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil
    and status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(obj.metadata.generation)
  return hs
end

local accepted = find_condition(status, "Accepted")
if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = tostring(accepted.reason) .. ": " .. tostring(accepted.message or "")
  return hs
end

local ready = find_condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Served by " .. tostring(status.endpointName) .. " as TargetModel " .. tostring(status.targetModel)
  return hs
end
if ready ~= nil and ready.status == "False" and terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message or "")
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message or "")
else
  hs.message = "Waiting for the endpoint's pass"
end
return hs
