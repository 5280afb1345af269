# iptables as typed: 'bpf-iptables -A INPUT -i eth1 -d 10.0.0.4/32 -j DROP' runs Invoke-BpfIptables on exactly those
# arguments. The functions have no parameters, so PowerShell binds none of the arguments itself: -d and -v stay
# iptables' options instead of becoming -Debug and -Verbose, as they would for a cmdlet before '--'. Leading -Name,
# -NetworkNamespace and -ChainPlacement (with their values), -WhatIf and -Confirm go to Invoke-BpfIptables; so do its defaults in
# $PSDefaultParameterValues. Bpfilter.psd1 loads this file as a nested module. See Get-Help Invoke-BpfIptables.

Set-StrictMode -Version Latest

function Invoke-BpfIptablesLine([string] $Family, [object[]] $Words) {
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
    Invoke-BpfIptablesLine Ipv4 $args
}

function Invoke-BpfIp6tablesCommandLine {
    Invoke-BpfIptablesLine Ipv6 $args
}

Set-Alias -Name bpf-iptables -Value Invoke-BpfIptablesCommandLine
Set-Alias -Name bpf-ip6tables -Value Invoke-BpfIp6tablesCommandLine

Export-ModuleMember -Function Invoke-BpfIptablesCommandLine, Invoke-BpfIp6tablesCommandLine -Alias bpf-iptables, bpf-ip6tables
