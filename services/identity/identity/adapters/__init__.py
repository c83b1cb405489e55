"""The outside world behind interfaces, one module per vendor family: ``sms`` (the SMS
gateway), ``enterprise`` (enterprise verification) and ``face`` (face verification), each with
its factory; ``vendors`` holds what they share (calling a vendor, retries through outages, the
Aliyun and Tencent Cloud SDK plumbing). Import from the family's module.
"""
