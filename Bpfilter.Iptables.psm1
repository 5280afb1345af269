# iptables as typed: 'bpf-iptables -A INPUT -i eth1 -d 10.0.0.4/32 -j DROP' runs Invoke-BpfIptables on exactly those
# arguments. The functions have no parameters, so PowerShell binds none of the arguments itself: -d and -v stay
# iptables' options instead of becoming -Debug and -Verbose, as they would for a cmdlet before '--'. Leading -Name,
# -NetworkNamespace and -ChainPlacement (with their values), -WhatIf and -Confirm go to Invoke-BpfIptables; so do its defaults in
# $PSDefaultParameterValues. Bpfilter.psd1 loads this file as a nested module. See Get-Help Invoke-BpfIptables.

Set-StrictMode -Version Latest

function Invoke-BpfIptablesLine([string] $Family, [object[]] $Words) {
    # A command a module function calls does not see the session's defaults unless they are brought into its scope.
    $PSDefaultParameterValues = $global:PSDefaultParameterValues
    $parameters = @{ Family = $Family }
    $index = 0
    while ($index -lt $Words.Count) {
        if ("$($Words[$index])" -imatch '^-(WhatIf|Confirm)$') {
            $parameters[$Matches[1]] = $true
            $index++
        }
        elseif ($index + 1 -lt $Words.Count -and "$($Words[$index])" -imatch '^-(Name|NetworkNamespace|ChainPlacement)$') {
            $parameters[$Matches[1]] = $Words[$index + 1]
            $index += 2
        }
        else { break }
    }
    # PowerShell reads 80,443 as an array: iptables means the comma list. Numbers keep the text they were typed as.
    $arguments = @(for (; $index -lt $Words.Count; $index++) {
        $word = $Words[$index]
        if ($word -is [array]) { ($word | ForEach-Object { "$_" }) -join ',' } else { "$word" }
    })
    Invoke-BpfIptables @parameters -Arguments $arguments
}

function Invoke-BpfIptablesCommandLine {
    <#
    .SYNOPSIS
    Runs an iptables command as typed (alias bpf-iptables) against a Bpfilter deployment.
    .DESCRIPTION
    Takes iptables' arguments exactly as typed, with no '--', and runs them with Invoke-BpfIptables: -d and -v stay
    iptables' options. Leading -Name, -NetworkNamespace and -ChainPlacement (each with its value), -WhatIf and
    -Confirm go to Invoke-BpfIptables, as do its defaults in $PSDefaultParameterValues. Commands separated by ';'
    (quoted) are one change. See Get-Help Invoke-BpfIptables -Full.
    .EXAMPLE
    bpf-iptables -t filter -A INPUT -i eth1 -d 10.0.0.4/32 -j DROP; bpf-iptables -L -v

    Drops what comes in on eth1 for 10.0.0.4, in the deployment named iptables, and lists it with its counters.
    .LINK
    Invoke-BpfIptables
    #>
    Invoke-BpfIptablesLine Ipv4 $args
}

function Invoke-BpfIp6tablesCommandLine {
    <#
    .SYNOPSIS
    Runs an ip6tables command as typed (alias bpf-ip6tables) against a Bpfilter deployment.
    .DESCRIPTION
    As bpf-iptables, for IPv6: the rules and policies the command changes and lists are ip6tables'. They share the
    deployment (and its user chains) with iptables'. See Get-Help Invoke-BpfIptables -Full.
    .EXAMPLE
    bpf-ip6tables -A INPUT -s 2001:db8::/32 -p tcp --dport 22 -j ACCEPT; bpf-ip6tables -S

    Accepts SSH from 2001:db8::/32 and prints the ip6tables rules.
    .LINK
    Invoke-BpfIptables
    #>
    Invoke-BpfIptablesLine Ipv6 $args
}

Set-Alias -Name bpf-iptables -Value Invoke-BpfIptablesCommandLine
Set-Alias -Name bpf-ip6tables -Value Invoke-BpfIp6tablesCommandLine

Export-ModuleMember -Function Invoke-BpfIptablesCommandLine, Invoke-BpfIp6tablesCommandLine -Alias bpf-iptables, bpf-ip6tables
