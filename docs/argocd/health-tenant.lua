-- Argo CD health check for roster.dev/Tenant.
-- Reads only metadata (generation, deletionTimestamp), spec.suspend and the status
-- roster writes (Ready and its checks, userCounts): nothing of a person.
-- Lua 5.1 (Argo CD's gopher-lua); tested with Debian's lua5.1 and lua5.4 by the
-- integration test `health::`.
local hs = {}

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "waiting for roster to check the tenant"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for roster to act on generation " .. tostring(generation)
  return hs
end

local ready = nil
local failing = {}
for _, c in ipairs(status.conditions) do
  if c.type == "Ready" then
    ready = c
  elseif c.status == "False" and c.message ~= nil and c.message ~= "" then
    table.insert(failing, c.type .. ": " .. c.message)
  end
end

local counts = ""
local n = status.userCounts
if n ~= nil then
  counts = tostring(n.active or 0) .. " active, " .. tostring(n.held or 0) .. " held, " ..
    tostring(n.quarantined or 0) .. " quarantined, " .. tostring(n.deprovisioning or 0) ..
    " deprovisioning, " .. tostring(n.deprovisioned or 0) .. " deprovisioned, " ..
    tostring(n.purged or 0) .. " purged"
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "being deleted"
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message
  end
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for roster to check the tenant"
  return hs
end
if ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason
  if #failing > 0 then
    hs.message = hs.message .. " (" .. table.concat(failing, "; ") .. ")"
  end
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "suspended: no side effects run, deadlines keep counting; " .. counts
  return hs
end
hs.status = "Healthy"
hs.message = "ready"
if counts ~= "" then
  hs.message = "ready: " .. counts
end
if n ~= nil and (n.held or 0) > 0 then
  hs.message = hs.message .. "; held users wait for approval (roster.dev/approve)"
end
return hs
