-- Argo CD health check for roster.dev/DirectoryUser, also used for roster.dev/Departure
-- (a deleted DirectoryUser whose lifecycle roster carries on; same status).
-- Reads only status.phase, status.observedGeneration and the conditions roster
-- writes (Ready, Stalled, Reconciling, Suspended, DryRun), never spec: the messages
-- are roster's, which never contain personal data (docs/security.md).
-- Lua 5.1 (Argo CD's gopher-lua); tested with Debian's lua5.1 and lua5.4 by the
-- integration test `health::`.
local hs = {}

local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function with_message(text, c)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return text .. ": " .. c.message
  end
  return text
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for roster to record the phase"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for roster to act on generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
if is_true(stalled) then
  -- Progress needs a person: a step failing 5 times in a row, a missing Tenant or
  -- policy, a duplicate employee ID.
  hs.status = "Degraded"
  hs.message = with_message(phase .. ", stalled (" .. tostring(stalled.reason) .. ")", stalled)
  return hs
end
if phase == "Held" then
  hs.status = "Suspended"
  hs.message = "Held by the mass-deprovisioning guard until approved (annotation roster.dev/approve)"
  return hs
end
local suspended = condition(status, "Suspended")
if is_true(suspended) then
  hs.status = "Suspended"
  hs.message = with_message(phase, suspended)
  return hs
end
if is_true(condition(status, "Reconciling")) or phase == "Deprovisioning" or not is_true(ready) then
  hs.status = "Progressing"
  hs.message = with_message(phase, ready)
  return hs
end
hs.status = "Healthy"
hs.message = with_message(phase, ready)
local dry_run = condition(status, "DryRun")
if is_true(dry_run) then
  hs.message = hs.message .. " (the policy is in dry-run)"
end
return hs
