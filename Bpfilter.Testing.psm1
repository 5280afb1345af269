# Pester support for Bpfilter: the Should operator -BeVerdict, for the results of Test-BpfPacket.
#
#     Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 23 | Should -BeVerdict Drop -ByRule no-telnet
#
# Bpfilter.psd1 loads this file as a nested module; it exports nothing. The operator is registered with Pester as
# soon as both modules are in the session, whichever came first: at once when Pester is already loaded, otherwise
# at the first Pester command looked up afterwards (Invoke-Pester, Describe, It, Should ...), through a command
# lookup hook that removes itself once the operator is registered. See about_Bpfilter_Testing.

Set-StrictMode -Version Latest

# The deciders as Get-BpfCounter names their rows, for -ByRule and for messages.
$script:DeciderNames = @{ Policy = '(policy)'; NotIp = '(not ip)'; Malformed = '(malformed)' }

function Get-BpfDeciderName($Result) {
    if ($Result.Rule) { return $Result.Rule }
    return $script:DeciderNames[$Result.DecidedBy.ToString()]
}

function Format-BpfDecision($Decision, $Evaluated) {
    $verdict = switch ("$($Decision.Verdict)") { 'Drop' { 'dropped' } 'Accept' { 'accepted' } default { "answered with code $($Decision.ReturnCode)" } }
    $by = switch ($Decision.DecidedBy.ToString()) {
        'Rule' { "by rule $($Decision.Position) '$($Decision.Rule)'" }
        'Policy' { 'by the policy' }
        'NotIp' { 'as not IP' }
        default { 'as malformed' }
    }
    $tried = if ($null -ne $Evaluated) { if (@($Evaluated).Count -gt 0) { " (rules tried: $(@($Evaluated) -join ', '))" } else { ' (no rule tried)' } } else { '' }
    "$verdict $by$tried"
}

function Test-BpfVerdictOperator($ActualValue, [switch] $Negate, $ExpectedValue, [string] $ByRule, [string] $Because) {
    <#
    .SYNOPSIS
    Checks the verdict of a Test-BpfPacket result (and with -ByRule, which rule or row decided it).
    .DESCRIPTION
    Succeeds when the result's Verdict is ExpectedValue (Accept or Drop) and, with -ByRule, the deciding rule has that
    name; -ByRule also takes '(policy)', '(not ip)' and '(malformed)'. A result made with -Kernel must also have the
    kernel agree with the interpreter: a disagreement fails the assertion, with -Not too.
    .EXAMPLE
    Test-BpfPacket -Ruleset $ruleset -Protocol tcp -DestinationPort 23 | Should -BeVerdict Drop -ByRule no-telnet
    .EXAMPLE
    Test-BpfPacket -Ruleset $ruleset -Protocol udp -DestinationPort 53 | Should -Not -BeVerdict Drop
    #>
    $because = if ($Because) { " because $($Because.Trim() -replace '^because\s+', '')," } else { '' }
    $fail = { param($message) [pscustomobject]@{ Succeeded = $false; FailureMessage = $message } }

    if ($null -eq $ActualValue -or -not $ActualValue.PSObject.Properties['DecidedBy'] -or -not $ActualValue.PSObject.Properties['Evaluated']) {
        $got = if ($null -eq $ActualValue) { '$null' } else { "[$($ActualValue.GetType().FullName)] $ActualValue" }
        return & $fail "Expected a Test-BpfPacket result,$because but got $got."
    }
    # By name: the engine's types live in Bpfilter's own load context, where bare type literals do not look.
    $expected = @('Accept', 'Drop') | Where-Object { $_ -eq "$ExpectedValue" }
    if (-not $expected) {
        return & $fail "'$ExpectedValue' is not a verdict: use Accept or Drop."
    }

    $result = $ActualValue
    $what = "packet '$($result.Packet)' in chain $($result.Chain)"
    $wanted = (Format-BpfDecision ([pscustomobject]@{ Verdict = $expected; DecidedBy = 'Policy' }) $null) -replace ' by the policy$', ''
    if ($ByRule) { $wanted += " by $ByRule" }
    $actual = Format-BpfDecision $result.Decision $result.Evaluated

    if ($null -ne $result.Kernel -and -not $result.Agrees) {
        return & $fail "Expected the kernel to decide $what as the interpreter did,$because but the interpreter $actual and the kernel $(Format-BpfDecision $result.Kernel $null)."
    }
    $matched = $result.Verdict -eq $expected -and (-not $ByRule -or (Get-BpfDeciderName $result) -eq $ByRule)
    if ($matched -ne [bool] $Negate) { return [pscustomobject]@{ Succeeded = $true; FailureMessage = $null } }
    if ($Negate) { return & $fail "Expected $what not to be $wanted,$because but it was $actual." }
    & $fail "Expected $what to be $wanted,$because but it was $actual."
}

$script:Registered = $false
$script:Registering = $false
$script:PreviousLookupAction = $null

# Registers -BeVerdict with the Pester loaded in this session; false while there is none (Pester 5 or later), or
# while Pester is still being imported (its own lookups reach the hook below before its built-in operators exist).
function Register-BpfShouldOperator {
    if ($script:Registered) { return $true }
    $pester = Get-Module -Name Pester | Where-Object { $_.ExportedFunctions.ContainsKey('Add-ShouldOperator') } | Select-Object -First 1
    if ($null -eq $pester) { return $false }
    $ready = try { & $pester { $null -ne $script:AssertionOperators -and $script:AssertionOperators.ContainsKey('Be') } } catch { $false }
    if (-not $ready) { return $false }
    $add = $pester.ExportedFunctions['Add-ShouldOperator']
    $script:Registered = $true
    try {
        & $add -Name BeVerdict -Test ${function:Test-BpfVerdictOperator} -InternalName Test-BpfVerdictOperator
    }
    catch {
        # Another module (or another copy of Bpfilter) already owns the name: keep theirs.
        Write-Verbose "Bpfilter: Should -BeVerdict was not registered: $_"
    }
    return $true
}

if (-not (Register-BpfShouldOperator)) {
    $script:PreviousLookupAction = $ExecutionContext.InvokeCommand.PostCommandLookupAction
    $ExecutionContext.InvokeCommand.PostCommandLookupAction = {
        param([string] $CommandName, [System.Management.Automation.CommandLookupEventArgs] $EventArgs)
        if ($null -ne $script:PreviousLookupAction) { $script:PreviousLookupAction.Invoke($CommandName, $EventArgs) }
        if ($script:Registering -or $null -eq $EventArgs.Command -or $EventArgs.Command.ModuleName -ne 'Pester') { return }
        $script:Registering = $true
        try {
            if (Register-BpfShouldOperator) { $ExecutionContext.InvokeCommand.PostCommandLookupAction = $script:PreviousLookupAction }
        }
        finally { $script:Registering = $false }
    }
}

$ExecutionContext.SessionState.Module.OnRemove = {
    if (-not $script:Registered) { $ExecutionContext.InvokeCommand.PostCommandLookupAction = $script:PreviousLookupAction }
}

Export-ModuleMember -Function @()
